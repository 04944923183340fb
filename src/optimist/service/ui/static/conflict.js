// The conflict dialog: a write met 412, the server's current version (theirs) was read
// again, and the user's edit (mine) and theirs both changed some field since the version
// the edit started from (base). Each field is a row: base, theirs, mine, and the result
// to save. Fields changed on one side only hold the merged value already; fields
// changed on both are marked and need a choice (a version, or an edited result).

import { control, fill, h, read, shown } from './fields.js';
import { jsonEqual, merge } from './merge.js';

/**
 * Merge two records field by field (optimist.merge's rules inside each field).
 * Returns {merged, conflicted}: every field's merged value, and the names of the
 * fields both sides changed differently.
 */
export function mergeFields(fields, base, theirs, mine) {
  const merged = {};
  const conflicted = [];
  for (const { name } of fields) {
    const { value, conflicts } = merge(base[name], theirs[name], mine[name]);
    merged[name] = value;
    if (conflicts.length > 0) conflicted.push(name);
  }
  return { merged, conflicted };
}

/** What happened to a field: the note its row shows. */
function note(field, base, theirs, mine, conflicted) {
  if (conflicted) return 'Changed on both sides: choose';
  const byThem = !jsonEqual(base, theirs);
  const byMe = !jsonEqual(base, mine);
  if (byThem && byMe) return 'Same change on both sides';
  if (byThem) return 'Merged: theirs';
  if (byMe) return 'Merged: mine';
  return 'Unchanged';
}

/** A cell showing one version, with a radio button to take it for a conflicting field. */
function version(field, value, side, pick) {
  const cell = h('td', { class: side }, h('pre', { class: 'value' }, shown(field, value)));
  if (pick) {
    const radio = h('input', { type: 'radio', name: `pick-${field.name}`, value: side });
    const text = side === 'theirs' ? 'Use theirs' : 'Use mine';
    cell.append(h('label', { class: 'pick' }, radio, ` ${text}`,
      h('span', { class: 'visually-hidden' }, ` for ${field.label}`)));
  }
  return cell;
}

/**
 * Show the dialog for `versions` ({base, theirs, mine, merged, conflicted}) of a record
 * with `fields`; `round` counts the 412s of this save. Resolves to the record to save
 * (every field's value), or null when the user cancels (Escape, or Cancel).
 */
export function resolveConflict(fields, versions, round) {
  const dialog = document.getElementById('conflict');
  const form = document.getElementById('conflict-form');
  const rows = document.getElementById('conflict-rows');
  const error = document.getElementById('conflict-error');
  const { base, theirs, mine, merged, conflicted } = versions;
  const controls = new Map();
  const settled = new Set();

  rows.replaceChildren();
  for (const field of fields) {
    const conflict = conflicted.includes(field.name);
    const result = control(field, merged[field.name], `result-${field.name}`);
    result.setAttribute('aria-describedby', `note-${field.name}`);
    result.addEventListener('input', () => settled.add(field.name));
    controls.set(field.name, result);
    rows.append(h('tr', { class: conflict ? 'conflict' : null, 'data-field': field.name },
      h('th', { scope: 'row' }, field.label,
        h('span', { class: 'note', id: `note-${field.name}` },
          note(field, base[field.name], theirs[field.name], mine[field.name], conflict))),
      h('td', { class: 'base' }, h('pre', { class: 'value' }, shown(field, base[field.name]))),
      version(field, theirs[field.name], 'theirs', conflict),
      version(field, mine[field.name], 'mine', conflict),
      h('td', { class: 'result' },
        h('label', { class: 'visually-hidden', for: result.id }, `Result: ${field.label}`),
        result)));
  }
  rows.onchange = (event) => {
    const radio = event.target;
    if (radio.type !== 'radio') return;
    const name = radio.name.slice('pick-'.length);
    const field = fields.find((candidate) => candidate.name === name);
    fill(field, controls.get(name), (radio.value === 'theirs' ? theirs : mine)[name]);
    settled.add(name);
  };

  document.getElementById('conflict-round').hidden = round < 2;
  dialog.dataset.round = String(round);
  error.replaceChildren();
  error.hidden = true;

  return new Promise((resolve) => {
    const fail = (message, focus) => {
      error.replaceChildren(message);
      error.hidden = false;
      focus.focus();
    };
    form.onsubmit = (event) => {
      event.preventDefault();
      const open = conflicted.filter((name) => !settled.has(name));
      if (open.length > 0) {
        const labels = open.map((name) => fields.find((f) => f.name === name).label);
        const first = rows.querySelector(`input[name="pick-${open[0]}"]`);
        fail(`Choose theirs or mine, or edit the result, for: ${labels.join(', ')}.`, first);
        return;
      }
      const record = {};
      for (const field of fields) {
        try {
          record[field.name] = read(field, controls.get(field.name));
        } catch (problem) {
          fail(problem.message, controls.get(field.name));
          return;
        }
      }
      dialog.onclose = null;
      dialog.close('save');
      resolve(record);
    };
    // Escape closes a modal dialog by itself (a cancel event, then close).
    dialog.onclose = () => resolve(null);
    document.getElementById('conflict-cancel').onclick = () => dialog.close('cancel');
    dialog.onkeydown = (event) => {
      // Enter saves from any control but a text area (a new line there) or a button.
      const target = event.target;
      if (event.key !== 'Enter' || target.tagName === 'TEXTAREA' || target.tagName === 'BUTTON') {
        return;
      }
      event.preventDefault();
      form.requestSubmit();
    };
    if (!dialog.open) dialog.showModal();
    const first = conflicted.length > 0
      ? rows.querySelector(`input[name="pick-${conflicted[0]}"]`)
      : controls.values().next().value;
    first.focus();
  });
}
