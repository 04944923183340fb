// A field's control, its value read back, and its value shown as text: one place for
// the editor and the conflict dialog.

/** Create an element with attributes and children (strings become text, never HTML). */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    element.setAttribute(name, value === true ? '' : value);
  }
  element.append(...children.flat().filter((child) => child !== null && child !== undefined));
  return element;
}

/** A field's value as a control shows it. */
function asText(field, value) {
  if (field.type === 'json') return JSON.stringify(value ?? {}, null, 2);
  return value ?? '';
}

/** A field's value as the dialog's columns show it. */
export function shown(field, value) {
  if (value === null || value === undefined || value === '') return '(empty)';
  return asText(field, value);
}

/** A control for `field` holding `value`, with the id `id`. */
export function control(field, value, id) {
  let element;
  if (field.type === 'select') {
    element = h('select', { id, name: field.name },
      field.options.map((option) => h('option', { value: option }, option)));
  } else if (field.type === 'textarea' || field.type === 'json') {
    element = h('textarea', { id, name: field.name, rows: field.type === 'json' ? 4 : 3 });
  } else {
    element = h('input', { id, name: field.name, type: 'text', autocomplete: 'off' });
  }
  element.value = asText(field, value);
  return element;
}

/** Put `value` into the control of `field`. */
export function fill(field, element, value) {
  element.value = asText(field, value);
}

/**
 * The value a control holds, or throws a SyntaxError naming the field when it holds
 * no value the field can take (metadata that is not a JSON object).
 */
export function read(field, element) {
  const text = element.value;
  if (field.type === 'json') {
    let value;
    try {
      value = JSON.parse(text);
    } catch {
      throw new SyntaxError(`${field.label}: not valid JSON`);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new SyntaxError(`${field.label}: must be a JSON object`);
    }
    return value;
  }
  return field.nullable && text === '' ? null : text;
}
