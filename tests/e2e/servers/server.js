// SPDX-License-Identifier: GPL-2.0
// Node.js http server for tapir's tests (libuv: readv/writev): fixed bodies, statuses, streams.
'use strict';
const http = require('http');
const port = Number(process.argv[2]);

http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/hello') {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end('hello from node\n');
  } else if (url.pathname.startsWith('/status/')) {
    res.writeHead(Number(url.pathname.slice(8)), { 'Content-Type': 'text/plain' });
    res.end('status\n');
  } else if (url.pathname === '/stream') {
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    let i = 0;
    const tick = () => {
      res.write(`data: ${i}\n\n`);
      if (++i === 5) return res.end();
      setTimeout(tick, 20);
    };
    tick();
  } else if (url.pathname === '/echo') {
    let n = 0;
    req.on('data', (d) => { n += d.length; });
    req.on('end', () => { res.writeHead(200); res.end(`${n}\n`); });
  } else {
    res.writeHead(404);
    res.end('not found\n');
  }
}).listen(port, '127.0.0.1');
