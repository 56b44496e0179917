// The front end of the motivating case: serves the chat page and proxies /ws to the chat
// server, as a Next.js app does with a rewrite (Next.js proxies rewrites with a bundled
// copy of http-proxy). Like the middleware in the original bug, it rebuilds the upstream
// request headers and leaves Origin out.
// Usage: node proxy.js LISTEN_PORT UPSTREAM_PORT
const http = require("http");
const httpProxy = require("http-proxy");

const [listenPort, upstreamPort] = process.argv.slice(2).map(Number);
const proxy = httpProxy.createProxyServer({ target: `http://127.0.0.1:${upstreamPort}`, ws: true });

const page = `<!doctype html><meta charset="utf-8"><title>chat</title>
<ul id="log"></ul>
<script>
const log = (t) => { const li = document.createElement("li"); li.textContent = t; document.getElementById("log").append(li); };
const ws = new WebSocket("ws://" + location.host + "/ws/chat?room=support");
ws.onopen = () => { log("open"); ws.send(JSON.stringify({type: "message", text: "hello, is anyone there?"})); };
ws.onmessage = (e) => log("message " + e.data);
ws.onclose = (e) => { log("close " + e.code + " " + e.reason); document.title = "closed " + e.code; };
</script>`;

const server = http.createServer((req, res) => {
  res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
  res.end(page);
});
server.on("upgrade", (req, socket, head) => {
  delete req.headers.origin; // the bug: Origin does not survive the proxy
  proxy.ws(req, socket, head);
});
proxy.on("error", (err) => console.error("proxy error", err.message));
server.listen(listenPort, "127.0.0.1", () => console.log("proxy ready"));
