// Seed 003's client ("Client-Side (React/TypeScript)"), its types stripped by hand.
// Two changes: the API is on another origin, so every URL starts with it, and
// fetchProject, which the seed calls but does not show, reads the ETag header.

let api = '';

export function useApi(origin) {
  api = origin;
}

export async function fetchProject(id) {
  const response = await fetch(`${api}/projects/${id}`);
  if (!response.ok) {
    throw new Error(`GET /projects/${id}: ${response.status}`);
  }
  const body = await response.json();
  // A header a cross-origin script may read only if Access-Control-Expose-Headers names it.
  const etag = response.headers.get('ETag');
  if (etag === null) {
    throw new Error('the ETag header is not readable');
  }
  return { ...body.result, etag };
}

export async function updateProject(id, data, etag) {
  try {
    const response = await fetch(`${api}/projects/${id}`, {
      method: 'PUT',
      headers: {
        'Content-Type': 'application/json',
        'If-Match': etag,
      },
      body: JSON.stringify(data),
    });

    if (response.status === 412) {
      // ETag mismatch - fetch latest and retry
      const currentProject = await fetchProject(id);
      return updateProject(id, data, currentProject.etag);
    }

    const updated = await response.json();
    return updated.result;
  } catch (error) {
    console.error('Update failed:', error);
    throw error;
  }
}
