// The app: a list of projects or test sessions, and an editor for one. A save sends the
// fields changed with If-Match; on 412 it reads the current version, merges field by
// field and, when both sides changed a field, asks the user (conflict.js); then it sends
// again with the new ETag. <html data-state> says where the app is: loading, ready,
// saving, conflict, saved, cancelled, refused (422) or failed.

import { API, explain, get, write } from './api.js';
import { mergeFields, resolveConflict } from './conflict.js';
import { control, fill, h, read } from './fields.js';
import { jsonEqual } from './merge.js';
import { RESOURCES } from './resources.js';

const $ = (id) => document.getElementById(id);
const setState = (state) => {
  document.documentElement.dataset.state = state;
};

/** The record being edited: its resource, id, the version read (base) and its ETag. */
let editing = null;
/** Counts views, so that an answer for a view left already is dropped. */
let view = 0;

function showView(id, resource) {
  $('list-view').hidden = id !== 'list-view';
  $('editor-view').hidden = id !== 'editor-view';
  for (const link of document.querySelectorAll('nav a')) {
    if (link.dataset.resource === resource.key) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

function showProblem(element, lines) {
  element.replaceChildren(...lines.map((line) => h('p', {}, line)));
  element.hidden = lines.length === 0;
}

// -- the list -------------------------------------------------------------------------

async function openList(resource) {
  const current = ++view;
  editing = null;
  setState('loading');
  showView('list-view', resource);
  document.title = `${resource.title} · optimist`;
  $('list-title').textContent = resource.title;
  $('list-head').replaceChildren(h('th', { scope: 'col' }, resource.title.replace(/s$/, '')),
    ...resource.columns.map(([label]) => h('th', { scope: 'col' }, label)));
  $('list-rows').replaceChildren();
  showProblem($('list-problem'), []);
  $('list-title').focus();
  await loadPage(resource, null, current);
}

async function loadPage(resource, cursor, current) {
  const query = new URLSearchParams({ limit: '50' });
  if (cursor !== null) query.set('cursor', cursor);
  const answer = await get(`${resource.collection}?${query}`);
  if (current !== view) return;
  if (answer.status !== 200) {
    showProblem($('list-problem'), explain(answer.body, answer.status));
    setState('failed');
    return;
  }
  const { items, next } = resource.page(answer.body);
  for (const item of items) {
    const id = resource.idOf(item);
    $('list-rows').append(h('tr', {},
      h('th', { scope: 'row' },
        h('a', { href: `#${resource.key}/${encodeURIComponent(id)}` }, resource.labelOf(item))),
      ...resource.columns.map(([, name]) => h('td', {}, item[name] ?? ''))));
  }
  $('list-empty').hidden = $('list-rows').children.length > 0;
  $('more').hidden = next === null;
  $('more').onclick = () => loadPage(resource, next, current);
  setState('ready');
}

// -- the editor -----------------------------------------------------------------------

const itemPath = ({ resource, id }) => `${resource.collection}/${encodeURIComponent(id)}`;

/** Show `record` (with `etag`) in the editor, as the version the next save starts from. */
function adopt(record, etag, values = record) {
  editing.base = record;
  editing.etag = etag;
  for (const field of editing.resource.fields) {
    fill(field, $(`field-${field.name}`), values[field.name]);
  }
  $('editor-title').textContent = editing.resource.labelOf(record);
  $('editor-meta').textContent = `${editing.id} · updated ${record.updated_at} · ETag ${etag}`;
}

async function openEditor(resource, id) {
  const current = ++view;
  editing = null;
  setState('loading');
  showView('editor-view', resource);
  $('back').href = `#${resource.key}`;
  $('back').textContent = `← All ${resource.title.toLowerCase()}`;
  $('status').textContent = '';
  showProblem($('problem'), []);
  const answer = await get(`${resource.collection}/${encodeURIComponent(id)}`);
  if (current !== view) return;
  if (answer.status !== 200) {
    $('editor-title').textContent = `No such ${resource.noun}`;
    $('editor-fields').replaceChildren();
    showProblem($('problem'), explain(answer.body, answer.status));
    setState('failed');
    return;
  }
  const record = resource.item(answer.body);
  const wide = (field) => field.type === 'textarea' || field.type === 'json';
  $('editor-fields').replaceChildren(...resource.fields.map((field) => h('div', {
    class: wide(field) ? 'field wide' : 'field',
  },
    h('label', { for: `field-${field.name}` }, field.label),
    control(field, record[field.name], `field-${field.name}`))));
  editing = { resource, id };
  adopt(record, answer.etag);
  document.title = `${resource.labelOf(record)} · optimist`;
  setState('ready');
  $('editor-title').focus();
}

/** The form's values, every field; throws a SyntaxError naming a field it cannot read. */
function readForm(fields) {
  return Object.fromEntries(fields.map((field) => [field.name, read(field, $(`field-${field.name}`))]));
}

/** The fields `mine` changed from `base`, with their new values: what a write sends. */
function changes(fields, base, mine) {
  return Object.fromEntries(fields
    .filter(({ name }) => !jsonEqual(base[name], mine[name]))
    .map(({ name }) => [name, mine[name]]));
}

async function save() {
  const { resource } = editing;
  const { fields } = resource;
  $('status').textContent = '';
  showProblem($('problem'), []);
  let mine;
  try {
    mine = readForm(fields);
  } catch (error) {
    showProblem($('problem'), [error.message]);
    $('problem').focus();
    return;
  }
  let { base, etag } = editing;
  let round = 0;
  const mergedFromThem = new Set();
  setState('saving');
  for (;;) {
    const sent = changes(fields, base, mine);
    if (Object.keys(sent).length === 0) {
      adopt(base, etag);
      $('status').textContent = round + mergedFromThem.size === 0
        ? 'Nothing to save.' : 'Nothing left to save: the service holds these values already.';
      setState('saved');
      return;
    }
    const answer = await write(itemPath(editing), resource.write, sent, etag);
    if (answer.status === 200) {
      adopt(resource.item(answer.body), answer.etag);
      const merged = [...mergedFromThem].map((name) => fields.find((f) => f.name === name).label);
      $('status').textContent = merged.length === 0
        ? 'Saved.' : `Saved, with the changes saved elsewhere to: ${merged.join(', ')}.`;
      setState('saved');
      return;
    }
    if (answer.status !== 412) {
      // Keep what the user sees; the next save starts from the version last read.
      adopt(base, etag, mine);
      showProblem($('problem'), [
        answer.status === 422 ? 'Not saved: the service refused the change.' : 'Not saved.',
        ...explain(answer.body, answer.status),
      ]);
      setState(answer.status === 422 ? 'refused' : 'failed');
      $('problem').focus();
      return;
    }
    // RFC 9110 §13.1.1: the version we started from is gone; read the current one.
    const current = await get(itemPath(editing));
    if (current.status !== 200) {
      showProblem($('problem'), ['Not saved.', ...explain(current.body, current.status)]);
      setState('failed');
      $('problem').focus();
      return;
    }
    const theirs = resource.item(current.body);
    const { merged, conflicted } = mergeFields(fields, base, theirs, mine);
    for (const { name } of fields) {
      if (!jsonEqual(base[name], theirs[name])) mergedFromThem.add(name);
    }
    if (conflicted.length > 0) {
      round += 1;
      setState('conflict');
      const resolved = await resolveConflict(fields, { base, theirs, mine, merged, conflicted }, round);
      if (resolved === null) {
        adopt(base, etag, mine);
        $('status').textContent = 'Not saved: the conflict is still open. Save again to see it.';
        setState('cancelled');
        $('save').focus();
        return;
      }
      mine = resolved;
      setState('saving');
    } else {
      mine = merged;
    }
    // The result was made from theirs: theirs is the base of the next round.
    base = theirs;
    etag = current.etag;
  }
}

$('editor').addEventListener('submit', (event) => {
  event.preventDefault();
  if (editing === null || document.documentElement.dataset.state === 'saving') return;
  save().catch((error) => {
    showProblem($('problem'), ['Not saved: the service could not be reached.', String(error)]);
    setState('failed');
    $('problem').focus();
  });
});
$('reload').addEventListener('click', () => {
  if (editing !== null) openEditor(editing.resource, editing.id);
});

// -- routes: #projects, #sessions, #projects/<id>, #sessions/<id> -----------------------

function route() {
  const [key, ...rest] = window.location.hash.slice(1).split('/');
  const resource = RESOURCES[key] ?? RESOURCES.projects;
  const id = decodeURIComponent(rest.join('/'));
  const opened = id === '' ? openList(resource) : openEditor(resource, id);
  opened.catch((error) => {
    const problem = id === '' ? $('list-problem') : $('problem');
    showProblem(problem, ['The service could not be reached.', String(error)]);
    setState('failed');
  });
}

$('service').textContent = API === '' ? window.location.host : new URL(API).host;
window.addEventListener('hashchange', route);
route();
