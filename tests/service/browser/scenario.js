// Reads the project named in the page's query, waits for window.proceed(), then
// updates it with the ETag it read. window.scenario says where it is ("reading",
// "read", "done" or "failed") and lists every response as "METHOD status".
import { fetchProject, updateProject, useApi } from './project-client.js';

const query = new URLSearchParams(window.location.search);
useApi(query.get('api'));

const seen = [];
const send = window.fetch.bind(window);
window.fetch = async (url, init = {}) => {
  const response = await send(url, init);
  seen.push(`${init.method ?? 'GET'} ${response.status}`);
  return response;
};

const scenario = { state: 'reading', seen };
window.scenario = scenario;
const allowed = new Promise((resolve) => {
  window.proceed = resolve;
});

try {
  const id = query.get('project');
  const project = await fetchProject(id);
  scenario.read = project.etag;
  scenario.state = 'read';
  await allowed;
  scenario.updated = await updateProject(id, { name: query.get('name') }, project.etag);
  scenario.state = 'done';
} catch (error) {
  scenario.error = String(error);
  scenario.state = 'failed';
}
