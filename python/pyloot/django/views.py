"""One view answering every pyloot route through the C request handler."""
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt

from pyloot.server import MAX_BODY, PROXY_ENVIRON_KEYS, warn_unmarked_proxy


@csrf_exempt  # /api/login takes the token itself; its cookie is SameSite=Strict
def serve(request, path=""):
    from pyloot.django import get_pyloot

    server = get_pyloot().get_wsgi()
    # The mount point: the request's path without the part this view got.
    full = request.path
    mount = full[: len(full) - len(path)].rstrip("/") if full.endswith(path) else ""
    meta = request.META
    body = b""
    if request.method == "POST":
        try:
            length = int(meta.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            return HttpResponse(b'{"error":"request body must be 0 to 16 MiB"}', status=413,
                                content_type="application/json")
        body = request.body
    peer = meta.get("REMOTE_ADDR") or ""
    proxied = any(k in meta for k in PROXY_ENVIRON_KEYS)
    warn_unmarked_proxy(peer, proxied, meta.get("HTTP_VIA"))
    status, _reason, headers, payload = server.handle(
        request.method, "/" + path, meta.get("QUERY_STRING", ""), meta.get("HTTP_ACCEPT_ENCODING"), False, body,
        authorization=meta.get("HTTP_AUTHORIZATION"), cookie=meta.get("HTTP_COOKIE"),
        peer=peer, proxied=proxied, allowed=server.verdict(request, "/" + path), mount=mount,
        secure=request.is_secure(), accept=meta.get("HTTP_ACCEPT"), host=meta.get("HTTP_HOST"))
    response = HttpResponse(b"" if request.method == "HEAD" else payload, status=status)
    for name, value in headers:
        if name.lower() == "content-type":
            response["Content-Type"] = value
        else:
            response[name] = value
    return response
