#!/usr/bin/env python3
"""One self-contained HTML file from the web UI and saved API answers: the demo's offline
flame graph (results/demo/flamegraph.html), which opens from disk with no server.

  offline_html.py WEBUI_DIR OUT.html --query Q.json [--missing M.json] [--diff D.json]
                  [--timeline T.json] [--meta KEY=VALUE ...]

The page's stylesheet, scripts and icon are inlined; the answers go into
window.FLEETSYM_STATIC, which app.js reads instead of fetching (symbolizer/webui/app.js).
"""
import argparse
import base64
import json
import os
import re


def script_text(s):
    """JSON or JS safe inside <script>...</script>."""
    return s.replace("</", "<\\/").replace("<!--", "<\\!--")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("webui")
    ap.add_argument("out")
    ap.add_argument("--query", required=True)
    ap.add_argument("--missing")
    ap.add_argument("--diff")
    ap.add_argument("--timeline")
    ap.add_argument("--meta", action="append", default=[])
    a = ap.parse_args()

    data = {"query": json.load(open(a.query))}
    if a.missing:
        data["missing"] = json.load(open(a.missing))
    if a.diff:
        data["diff"] = json.load(open(a.diff))
    if a.timeline:
        data["timeline"] = json.load(open(a.timeline))
    data["meta"] = dict(kv.split("=", 1) for kv in a.meta)

    read = lambda name: open(os.path.join(a.webui, name), encoding="utf-8").read()
    html = read("index.html")
    icon = "data:image/svg+xml;base64," + base64.b64encode(read("favicon.svg").encode()).decode()
    html = html.replace('href="ui/favicon.svg"', 'href="%s"' % icon)
    html = html.replace('src="ui/favicon.svg"', 'src="%s"' % icon)
    html = re.sub(r'<link rel="stylesheet" href="ui/app.css">',
                  lambda m: "<style>\n%s</style>" % read("app.css"), html)
    blob = "<script>window.FLEETSYM_STATIC = %s;</script>\n" % script_text(
        json.dumps(data, separators=(",", ":")))
    html = re.sub(r'<script src="ui/(\w+)\.js"></script>',
                  lambda m: "<script>\n%s</script>" % script_text(read(m.group(1) + ".js")), html)
    html = html.replace("<script>\n", blob + "<script>\n", 1)
    with open(a.out, "w", encoding="utf-8") as f:
        f.write(html)


if __name__ == "__main__":
    main()
