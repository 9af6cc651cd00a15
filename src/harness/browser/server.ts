/**
 * The browser door's HTTP server: 127.0.0.1 only, a random port, every path under a random
 * token. It serves the page, the page runtime and the bundled module (fixed files), a built-in's
 * asset folders (`assets/<name>/…`, e.g. onnxruntime-web's .wasm), and each call's binary
 * request and answer (`io/<id>`: GET the request, POST the answer).
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, resolve, sep } from 'node:path';

export const CONTENT_TYPES: Record<string, string> = {
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.html': 'text/html; charset=utf-8',
};
/** Largest result the page may post back (a float64 result of 64 Mi elements). */
const MAX_BODY = 512 * 1024 * 1024;

const errText = (e: unknown) => (e instanceof Error ? e.message : String(e));

export class DoorServer {
  readonly token = randomBytes(12).toString('hex');
  /** Call id -> request message, and the page's answer once posted. */
  readonly io = new Map<number, { req: Uint8Array; res?: Uint8Array }>();
  private server?: Server;
  base = '';

  constructor(
    private readonly files: Record<string, { body: string; type: string }>,
    private readonly assets: Record<string, string>,
  ) {}

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((e) => this.send(res, 500, `error: ${errText(e)}`));
    });
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(0, '127.0.0.1', () => ok());
    });
    this.server = server;
    this.base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/${this.token}/`;
  }

  private send(res: ServerResponse, status: number, body: string | Uint8Array, type = 'text/plain; charset=utf-8'): void {
    res.writeHead(status, {
      'Content-Type': type,
      'Cache-Control': 'no-store',
      // cross-origin isolation: SharedArrayBuffer (threaded wasm) works in the page
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
    });
    res.end(body);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const prefix = `/${this.token}/`;
    if (!url.pathname.startsWith(prefix)) return this.send(res, 404, 'not found');
    const path = decodeURIComponent(url.pathname.slice(prefix.length));
    const io = /^io\/(\d+)$/.exec(path);
    if (io) {
      const slot = this.io.get(Number(io[1]));
      if (!slot) return this.send(res, 404, 'no such call');
      if (req.method === 'GET') return this.send(res, 200, slot.req, 'application/octet-stream');
      if (req.method !== 'POST') return this.send(res, 405, 'GET or POST');
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const c of req as AsyncIterable<Buffer>) {
        size += c.length;
        if (size > MAX_BODY) return this.send(res, 413, `a result over ${MAX_BODY} bytes`);
        chunks.push(c);
      }
      slot.res = new Uint8Array(Buffer.concat(chunks));
      return this.send(res, 200, 'ok');
    }
    const file = this.files[path];
    if (file) return this.send(res, 200, file.body, file.type);
    const asset = /^assets\/([^/]+)\/(.+)$/.exec(path);
    if (asset && this.assets[asset[1]!]) {
      const dir = resolve(this.assets[asset[1]!]!);
      const target = resolve(dir, asset[2]!);
      if (!target.startsWith(dir + sep)) return this.send(res, 403, 'outside the asset directory');
      try {
        return this.send(res, 200, await readFile(target), CONTENT_TYPES[extname(target)] ?? 'application/octet-stream');
      } catch {
        return this.send(res, 404, 'not found');
      }
    }
    return this.send(res, 404, 'not found');
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((ok) => s.close(() => ok()));
  }
}
