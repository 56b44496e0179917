// Node http-proxy in front of the chat server, as a Next.js app proxies a rewrite (Next.js
// bundles http-proxy). With STRIP=origin the proxyReqWs hook removes the Origin header from
// the upstream upgrade request: a stand-in for the middleware of the original bug.
// xfwd adds X-Forwarded-For/-Port/-Proto, as Next.js does.
// Usage: STRIP=origin node proxy.js LISTEN_PORT UPSTREAM_PORT
const http = require("http");
const httpProxy = require("http-proxy");

const [listenPort, upstreamPort] = process.argv.slice(2).map(Number);
const strip = (process.env.STRIP || "").split(",").filter(Boolean);
const proxy = httpProxy.createProxyServer({
  target: `http://127.0.0.1:${upstreamPort}`, ws: true, xfwd: true,
});
proxy.on("proxyReqWs", (proxyReq) => {
  for (const name of strip) proxyReq.removeHeader(name);
});
proxy.on("error", (err) => console.error("proxy error", err.message));

const page = `<!doctype html><meta charset="utf-8"><title>chat</title>
<script>
const ws = new WebSocket("ws://" + location.host + "/ws/chat?room=support");
ws.onopen = () => ws.send(JSON.stringify({type: "message", text: "hello, is anyone there?"}));
ws.onmessage = () => ws.close(1000, "bye");
ws.onclose = (e) => { document.title = "closed " + e.code; };
</script>`;
const server = http.createServer((req, res) => {
  res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
  res.end(page);
});
server.on("upgrade", (req, socket, head) => proxy.ws(req, socket, head));
server.listen(listenPort, "127.0.0.1", () => console.log("proxy ready"));
