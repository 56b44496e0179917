// One wss:// session between a Node `ws` server and client on loopback.
// Run by wss_capture.py as: node --tls-keylog=KEYLOG wss_node_pair.js '<json>'
// with NODE_PATH pointing at a folder where `npm install ws` was run.
// JSON: port, cert, key, tls ("1.2" | "1.3"), ciphers (Node `ciphers` option: TLS 1.3
// suite names such as TLS_CHACHA20_POLY1305_SHA256 work here, unlike Python's ssl),
// messages ([kind, size] list), compression (bool).
"use strict";
const fs = require("fs");
const https = require("https");
const WebSocket = require("ws");

const cfg = JSON.parse(process.argv[2]);
const version = cfg.tls === "1.2" ? "TLSv1.2" : "TLSv1.3";
const tlsOpts = { minVersion: version, maxVersion: version };
if (cfg.ciphers) tlsOpts.ciphers = cfg.ciphers;

function payload(kind, size, index) {
  if (kind === "text") {
    const unit = `message ${index} `;
    return unit.repeat(Math.floor(size / unit.length) + 1).slice(0, size);
  }
  const buf = Buffer.alloc(size);
  for (let i = 0; i < size; i++) buf[i] = (index * 7 + i) % 251;
  return buf;
}

const server = https.createServer({
  key: fs.readFileSync(cfg.key),
  cert: fs.readFileSync(cfg.cert),
  ...tlsOpts,
});
const wss = new WebSocket.Server({ server, perMessageDeflate: !!cfg.compression });
wss.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
});

server.listen(cfg.port, "127.0.0.1", () => {
  const ws = new WebSocket(`wss://127.0.0.1:${cfg.port}/tls-test`, {
    ca: fs.readFileSync(cfg.cert),
    servername: "localhost",
    perMessageDeflate: !!cfg.compression,
    ...tlsOpts,
  });
  let index = 0;
  const sendNext = () => {
    if (index >= cfg.messages.length) {
      ws.close(1000, "done");
      return;
    }
    const [kind, size] = cfg.messages[index];
    ws.send(payload(kind, size, index), { binary: kind !== "text" });
    index += 1;
  };
  ws.on("open", sendNext);
  ws.on("message", sendNext);
  ws.on("close", () => {
    wss.close();
    server.close();
  });
});
