/* pyloot: the command-line program (libmicrohttpd server and store inspection). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: pyloot [-h HOST] [-p PORT] [--help] [--version]\n"
    "\n"
    "optional arguments:\n"
    "-h HOST, --host HOST  Host to listen on. (Default: 0.0.0.0)\n"
    "-p PORT, --port PORT  Port to listen on. (Default: 8000)\n"
    "--help                show this help message and exit\n"
    "--version             show the version and exit\n";

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("pyloot %s\n", PYLOOT_VERSION);
            return 0;
        }
    }
    fputs("pyloot: serving failed: the remote-mode server is not available in this version\n", stderr);
    fputs(usage, stderr);
    return 2;
}
