/**
 * What the fuzz knows about each service: the routes that take JSON (with a valid body to break),
 * the routes that take bodies (for huge ones), and the routes that take an id (for traversal).
 */
export interface JsonRoute {
  method: string;
  path: string;
  body: unknown;
  type?: string;
  /** It also takes text/plain (the log service's Go format), so JSON sent as text is not refused. */
  acceptsText?: boolean;
}

export interface BodyRoute {
  method: string;
  path: string;
  type: string;
}

export interface Target {
  name: string;
  entry: string;
  url: string;
  pid: number;
  jsonRoutes: JsonRoute[];
  bodyRoutes: BodyRoute[];
  /** Paths with a place for an id; `{id}` is replaced, raw (the id arrives already encoded or not). */
  idRoutes: { method: string; path: string; numeric?: boolean }[];
  /** Its pages are for people: errors may be HTML pages (still a 4xx, never a stack trace). */
  htmlPages?: boolean;
}

const patch = { added: [{ name: 'nobody', url: 'http://127.0.0.1:9' }], removed: [], seq: 1 };
const patchRoute: JsonRoute = { method: 'POST', path: '/services', body: patch };
const patchBodyRoute: BodyRoute = { method: 'POST', path: '/services', type: 'application/json' };

/** Routes per service; `registration` is a valid registration body whose URLs lead nowhere. */
export function routesFor(name: string): Pick<Target, 'jsonRoutes' | 'bodyRoutes' | 'idRoutes' | 'htmlPages'> {
  switch (name) {
    case 'registry':
      return {
        jsonRoutes: [
          {
            method: 'POST',
            path: '/services',
            body: {
              serviceName: 'fuzzed',
              serviceURL: 'http://127.0.0.1:9',
              heartbeatURL: 'http://127.0.0.1:9/heartbeat',
              serviceUpdateURL: 'http://127.0.0.1:9/services',
              requiredServices: ['log'],
              metadata: { a: 'b' },
            },
          },
        ],
        bodyRoutes: [
          { method: 'POST', path: '/services', type: 'application/json' },
          { method: 'DELETE', path: '/services', type: 'text/plain' },
          { method: 'PUT', path: '/services/fuzz/lease', type: 'application/json' },
        ],
        idRoutes: [
          { method: 'DELETE', path: '/services/{id}' },
          { method: 'PUT', path: '/services/{id}/lease' },
        ],
      };
    case 'log':
      return {
        jsonRoutes: [{ method: 'POST', path: '/log', body: { message: 'fuzz', level: 'info', service: 'fuzz', requestId: 'r1' }, acceptsText: true }, patchRoute],
        bodyRoutes: [
          { method: 'POST', path: '/log', type: 'application/json' },
          { method: 'POST', path: '/log', type: 'application/x-ndjson' },
          { method: 'POST', path: '/log', type: 'text/plain' },
          patchBodyRoute,
        ],
        idRoutes: [{ method: 'GET', path: '/logs/{id}' }],
      };
    case 'grades':
      return {
        jsonRoutes: [{ method: 'POST', path: '/students/1/grades', body: { title: 'Fuzz', type: 'Quiz', score: 50 } }, patchRoute],
        bodyRoutes: [{ method: 'POST', path: '/students/1/grades', type: 'application/json' }, patchBodyRoute],
        idRoutes: [
          { method: 'GET', path: '/students/{id}', numeric: true },
          { method: 'POST', path: '/students/{id}/grades', numeric: true },
        ],
      };
    case 'portal':
      return {
        jsonRoutes: [patchRoute],
        bodyRoutes: [{ method: 'POST', path: '/students/1/grades', type: 'application/x-www-form-urlencoded' }, patchBodyRoute],
        idRoutes: [{ method: 'GET', path: '/students/{id}', numeric: true }],
        htmlPages: true,
      };
    case 'imagestorage':
      return {
        jsonRoutes: [patchRoute],
        bodyRoutes: [{ method: 'PUT', path: '/images/working/fuzz', type: 'image/png' }, patchBodyRoute],
        idRoutes: [
          { method: 'GET', path: '/images/working/{id}' },
          { method: 'PUT', path: '/images/working/{id}' },
          { method: 'DELETE', path: '/images/finished/{id}' },
          { method: 'GET', path: '/images/{id}/x' },
        ],
      };
    case 'imagemaster':
      return {
        jsonRoutes: [
          { method: 'POST', path: '/tasks/claim', body: { workerId: 'fuzz', waitMs: 0 } },
          { method: 'POST', path: '/tasks/1/complete', body: { leaseToken: 'nope', resultBytes: 1 } },
          patchRoute,
        ],
        bodyRoutes: [{ method: 'POST', path: '/tasks', type: 'image/png' }, { method: 'POST', path: '/tasks/claim', type: 'application/json' }, patchBodyRoute],
        idRoutes: [
          { method: 'GET', path: '/tasks/{id}', numeric: true },
          { method: 'GET', path: '/tasks/{id}/result', numeric: true },
        ],
      };
    case 'imagefrontend':
      return {
        jsonRoutes: [patchRoute],
        bodyRoutes: [{ method: 'POST', path: '/submitTask', type: 'multipart/form-data; boundary=fuzzboundary' }, patchBodyRoute],
        idRoutes: [
          { method: 'GET', path: '/isReady?id={id}', numeric: true },
          { method: 'GET', path: '/getImage?id={id}', numeric: true },
        ],
      };
    default:
      return { jsonRoutes: [patchRoute], bodyRoutes: [patchBodyRoute], idRoutes: [{ method: 'GET', path: '/x/{id}' }] };
  }
}

/** Ids meant to climb out of a data directory or confuse a path, encoded and not. */
export const TRAVERSAL_IDS = [
  '..%2F..%2Fetc%2Fpasswd',
  '..%2f..%2f..%2fsecret',
  '%2e%2e',
  '%2e%2e%2f%2e%2e%2fsecret',
  '..%5c..%5csecret',
  '..\\..\\secret',
  'abc%00',
  'abc%00.png',
  '%00',
  '....%2F%2F....%2F%2Fsecret',
  '%252e%252e%252fsecret',
  '%c0%ae%c0%ae%2fsecret',
  '..',
  '.',
  '%2Fetc%2Fpasswd',
  'abc%0d%0aSet-Cookie:%20x=1',
  'a'.repeat(4000),
];

/** Not numbers, or not ids, for routes whose ids are positive integers. */
export const NUMERIC_JUNK = ['-1', '0', '1.5', '1e3', '0x10', '99999999999999999999999', 'NaN', 'Infinity', ' 1', '1%20OR%201=1'];
