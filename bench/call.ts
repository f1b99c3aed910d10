/** The benchmarks' HTTP call: over a keep-alive agent they own (so connection set-up stays out of the figures), with a timeout. */
import http from 'node:http';

export interface Answer {
  status: number;
  /** The body parsed as JSON, or its text when it is not JSON. */
  data: any;
}

export type Call = (method: string, url: string, body?: unknown, contentType?: string) => Promise<Answer>;

/** A call through `agent`: a string body is sent as it is, anything else as JSON. */
export function callThrough(agent: http.Agent): Call {
  return (method, url, body, contentType = 'application/json') => {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const headers = payload === undefined ? {} : { 'content-type': contentType, 'content-length': Buffer.byteLength(payload) };
      const req = http.request(url, { method, agent, timeout: 30_000, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let data: any = text;
          try {
            data = JSON.parse(text);
          } catch {
            // not JSON
          }
          resolve({ status: res.statusCode ?? 0, data });
        });
      });
      req.on('timeout', () => req.destroy(new Error(`timeout: ${method} ${url}`)));
      req.on('error', reject);
      req.end(payload);
    });
  };
}
