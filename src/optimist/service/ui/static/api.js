// Requests to the service. The base URL is the page's `api` query parameter, else the
// `data-api` attribute of <html>, else the page's own origin: the same files work
// served by the service (same origin) or from anywhere its --cors-origin allows.

const query = new URLSearchParams(window.location.search);
const configured = query.get('api') ?? document.documentElement.dataset.api ?? '';

/** The service's base URL, without a trailing slash ('' for the page's own origin). */
export const API = configured.replace(/\/+$/, '');

/** One answer: its status, its ETag (null when absent) and its JSON body (or null). */
async function answer(response) {
  const type = response.headers.get('Content-Type') ?? '';
  const body = /json/.test(type) ? await response.json() : null;
  return { status: response.status, etag: response.headers.get('ETag'), body };
}

/** GET `path`; never cached by the browser without revalidation. */
export async function get(path) {
  return answer(await fetch(`${API}${path}`, { cache: 'no-cache' }));
}

/** A write of `body` to `path` that holds only if the resource still has `etag`. */
export async function write(path, { method, type }, body, etag) {
  const response = await fetch(`${API}${path}`, {
    method,
    // RFC 9110 §13.1.1: the write is applied only if the resource still has this ETag.
    headers: { 'Content-Type': type, 'If-Match': etag },
    body: JSON.stringify(body),
  });
  return answer(response);
}

/** The sentences a problem (RFC 9457) gives a person: its detail, then each field's reason. */
export function explain(problem, status) {
  if (problem === null || typeof problem !== 'object') return [`The service answered ${status}.`];
  const lines = [problem.detail ?? problem.title ?? `The service answered ${status}.`];
  for (const param of problem.invalid_params ?? []) lines.push(`${param.name}: ${param.reason}`);
  if (Array.isArray(problem.allowed_statuses)) {
    const allowed = problem.allowed_statuses.join(', ') || 'none';
    lines.push(`From ${problem.current_status} the status may become: ${allowed}.`);
  }
  return lines;
}
