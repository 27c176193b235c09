"""The dashboard at ``/``: one plain HTML page with a small script, no build step.

The script reads ``/api/status`` twice a second and shows the node (pid, where it listens, connected
peers) and every drive: key (a link to its files), version, size, the part stored here (a bar: live
progress while a download runs), download rate, whether it is seeded, and its peers with the bytes
sent and received. A form seeds a drive (``POST /api/seeds``); a button per seeded drive unseeds it.
"""

from __future__ import annotations

from hypernode.gateway.http import Response

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>hypernode</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 14px system-ui, sans-serif; margin: 1.5em 2em; color: #222; }
h1 { font-size: 1.4em; margin: 0 0 .3em; }
#node { color: #555; margin-bottom: 1em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 4px 10px; border-bottom: 1px solid #ddd; vertical-align: top; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
code { font-size: 12px; }
.bar { width: 120px; height: 10px; background: #eee; display: inline-block; vertical-align: middle; }
.bar > span { display: block; height: 100%; background: #3a7; }
.peers { font-size: 12px; color: #444; }
form { margin: 1.5em 0; }
input[name=key] { width: 40em; font-family: monospace; }
#message { margin-left: 1em; }
.error { color: #b00; }
</style></head>
<body>
<h1>hypernode</h1>
<div id="node">connecting…</div>
<table>
<thead><tr><th>drive</th><th class="n">version</th><th class="n">size</th><th>here</th>
<th class="n">down</th><th>seeded</th><th>peers</th></tr></thead>
<tbody id="drives"><tr><td colspan="7">…</td></tr></tbody>
</table>
<form id="seed-form">
<label>Seed a drive: <input name="key" placeholder="64 hex digits or hyper://KEY" autocomplete="off"></label>
<button type="submit">Seed</button><span id="message"></span>
</form>
<script>
"use strict";
const last = new Map();  // key -> [time, downloaded bytes]
function size(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + " " + units[i];
}
function cell(row, text, cls) {
  const td = document.createElement("td");
  if (cls) td.className = cls;
  td.textContent = text;
  row.appendChild(td);
  return td;
}
async function unseed(key) {
  await fetch("/api/seeds/" + key, {method: "DELETE"});
  refresh();
}
function render(status) {
  document.getElementById("node").textContent =
    "pid " + status.pid + (status.port ? " · replicating on " + status.host + ":" + status.port : "") +
    " · " + status.connected_peers + " peer(s) connected · " + status.drives.length + " drive(s)";
  const body = document.getElementById("drives");
  body.replaceChildren();
  const now = performance.now();
  for (const d of status.drives) {
    const row = document.createElement("tr");
    row.dataset.key = d.key;
    const name = document.createElement("td");
    const link = document.createElement("a");
    link.href = "/hyper/" + d.key + "/";
    link.textContent = d.key.slice(0, 16) + "…";
    link.title = d.key;
    name.appendChild(link);
    if (d.writable) name.appendChild(document.createTextNode(" (writable)"));
    row.appendChild(name);
    cell(row, String(d.version), "n version");
    cell(row, size(d.bytes), "n size");
    const here = cell(row, "", "here");
    const bar = document.createElement("span");
    bar.className = "bar";
    const fill = document.createElement("span");
    fill.style.width = (100 * d.local).toFixed(1) + "%";
    bar.appendChild(fill);
    here.appendChild(bar);
    const pct = document.createElement("span");
    pct.className = "local";
    pct.textContent = " " + (100 * d.local).toFixed(1) + "%";
    here.appendChild(pct);
    here.appendChild(document.createTextNode(" (" + d.local_blocks + "/" + d.blocks + " blocks)"));
    const prev = last.get(d.key);
    let rate = "";
    if (prev && now > prev[0]) {
      rate = size(Math.max(0, (d.downloaded_bytes - prev[1]) * 1000 / (now - prev[0]))) + "/s";
    }
    last.set(d.key, [now, d.downloaded_bytes]);
    cell(row, rate, "n rate");
    const seeded = cell(row, d.seeded ? "yes " : "no", "seeded");
    if (d.seeded) {
      const button = document.createElement("button");
      button.textContent = "unseed";
      button.onclick = () => unseed(d.key);
      seeded.appendChild(button);
    }
    const peers = cell(row, "", "peers");
    if (!d.peers.length) peers.textContent = "none";
    for (const p of d.peers) {
      const line = document.createElement("div");
      line.textContent = p.address + " ↑ " + size(p.uploaded_bytes) + " ↓ " + size(p.downloaded_bytes);
      peers.appendChild(line);
    }
    body.appendChild(row);
  }
  if (!status.drives.length) {
    const row = document.createElement("tr");
    cell(row, "no drives yet: seed one below").colSpan = 7;
    body.appendChild(row);
  }
}
async function refresh() {
  try {
    const response = await fetch("/api/status", {cache: "no-store"});
    if (!response.ok) throw new Error(response.status + " " + (await response.text()));
    render(await response.json());
  } catch (err) {
    document.getElementById("node").textContent = "cannot reach the node: " + err.message;
  }
}
document.getElementById("seed-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const message = document.getElementById("message");
  const key = event.target.key.value.trim().replace(/^hyper:\\/\\//, "").replace(/\\/+$/, "");
  message.className = "";
  message.textContent = "…";
  const response = await fetch("/api/seeds", {method: "POST", headers: {"content-type": "application/json"},
                                              body: JSON.stringify({key})});
  const text = await response.text();
  if (response.ok) {
    message.textContent = "seeding " + key.slice(0, 16) + "…";
    event.target.key.value = "";
  } else {
    message.className = "error";
    message.textContent = text;
  }
  refresh();
});
refresh();
setInterval(refresh, 500);
</script>
</body></html>
"""


def page() -> Response:
    body = PAGE.encode()
    return Response(200, [("content-type", "text/html; charset=utf-8"), ("content-length", str(len(body))),
                          ("cache-control", "no-cache"), ("x-content-type-options", "nosniff"),
                          ("x-frame-options", "DENY")], body)
