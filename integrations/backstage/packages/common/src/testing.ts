/**
 * A stand-in for Gangway's HTTP API in unit tests: an http.Server on
 * 127.0.0.1 whose routes the test writes, recording every request. The
 * real thing is exercised by tests/*.it.ts against a real Gangway stack.
 * Not exported from the package index.
 */
import http from 'node:http';
import { AddressInfo } from 'node:net';

export interface Recorded {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export type Route = (req: Recorded, res: http.ServerResponse) => void | Promise<void>;

export class FakeGangway {
  readonly requests: Recorded[] = [];
  private readonly routes: Array<{ method: string; re: RegExp; route: Route }> = [];
  private server = http.createServer((req, res) => this.handle(req, res));
  private readonly open = new Set<http.ServerResponse>();
  url = '';

  on(method: string, re: RegExp, route: Route): this {
    this.routes.unshift({ method, re, route });
    return this;
  }

  async start(): Promise<this> {
    await new Promise<void>(resolve => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    for (const r of this.open) r.destroy();
    this.server.closeAllConnections();
    await new Promise<void>(resolve => this.server.close(() => resolve()));
  }

  calls(method: string, re: RegExp): Recorded[] {
    return this.requests.filter(r => r.method === method && re.test(r.path));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse) {
    let body = '';
    for await (const chunk of req) body += chunk;
    const rec: Recorded = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body };
    this.requests.push(rec);
    this.open.add(res);
    res.on('close', () => this.open.delete(res));
    const r = this.routes.find(x => x.method === rec.method && x.re.test(rec.path));
    if (!r) {
      problem(res, 404, 'not_found', `no route ${rec.method} ${rec.path}`);
      return;
    }
    await r.route(rec, res);
  }
}

export function reply(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

export function problem(res: http.ServerResponse, status: number, code: string, detail: string, extra: object = {}) {
  res.writeHead(status, { 'Content-Type': 'application/problem+json' });
  res.end(JSON.stringify({ type: 'about:blank', title: code, status, code, detail, ...extra }));
}

/** Starts an event stream; write events with sse(). */
export function sseHead(res: http.ServerResponse) {
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
  res.flushHeaders();
}

export function sse(res: http.ServerResponse, event: string, data: unknown, id?: string | number) {
  res.write(`${id !== undefined ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}
