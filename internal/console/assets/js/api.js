// api.js calls the console's JSON API. Every POST carries the per-process CSRF token the
// page was served with; errors come back as Error objects with the server's message.
const token = document.querySelector('meta[name="vltava-csrf"]').content;

export class APIError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function call(method, path, body) {
  const opts = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
  if (method !== 'GET') {
    opts.headers['Content-Type'] = 'application/json';
    opts.headers['X-Vltava-Csrf'] = token;
    opts.body = JSON.stringify(body ?? {});
  }
  let resp;
  try {
    resp = await fetch(path, opts);
  } catch (e) {
    throw new APIError(0, 'NETWORK', 'The console did not answer: ' + e.message);
  }
  let data = null;
  try { data = await resp.json(); } catch { /* a non-JSON answer: reported below */ }
  if (!resp.ok) {
    throw new APIError(resp.status, data?.code || 'HTTP_' + resp.status, data?.error || `${method} ${path}: HTTP ${resp.status}`);
  }
  return data;
}

export const get = path => call('GET', path);
export const post = (path, body) => call('POST', path, body);
export const enc = encodeURIComponent;
