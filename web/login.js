/* The token form, shown over the page after a 401. The server keeps the token in an HttpOnly cookie,
 * so the page's scripts never hold it. */
import { h, fill } from "./dom.js";
import { login } from "./api.js";
import { hideBanner } from "./feedback.js";

let shown = false;

/** Show the form once (later 401s while it is up do nothing); loggedIn() runs when the token was taken. */
export function showLogin(message, loggedIn) {
  if (shown) return;
  shown = true;
  const input = h("input", { id: "login-token", type: "password", autocomplete: "current-password",
    spellcheck: "false", "aria-label": "Token", placeholder: "token" });
  const note = h("p", { class: "login-note", id: "login-error", role: "alert" });
  const form = h("form", { class: "login-form", id: "login-form" },
    h("h2", null, "This pyloot needs a token"),
    h("p", { class: "muted small" }, "Its server was started with a token (PyLoot(token=...), PYLOOT_TOKEN or pyloot --token). ",
      "Enter it once: this browser keeps it in a cookie for this page only."),
    h("div", { class: "login-row" }, input, h("button", { type: "submit", class: "btn", id: "login-submit" }, "Log in")),
    note);
  const overlay = h("div", { class: "login-overlay", id: "login" }, form);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    fill(note);
    const failed = await login(input.value);
    if (failed) {
      fill(note, failed.message);
      if (failed.refused) input.select();
      return;
    }
    overlay.remove();
    shown = false;
    hideBanner();
    loggedIn();
  });
  document.body.append(overlay);
  input.focus();
}
