// The two kinds of resource the app edits, as their APIs describe them: where they
// are, how a page and an item read, which fields a person may change, and how a
// change is sent (projects: PUT with the fields changed, SPEC §4.2; test sessions: a
// JSON merge patch, RFC 7396, SPEC §4.3). Both carry their validator in ETag and take
// it back in If-Match.

/**
 * A field: `name` in the resource; `type` text | textarea | select | json;
 * `nullable`: an empty control means null (the API clears the field).
 */
const PROJECT_FIELDS = [
  { name: 'name', label: 'Name', type: 'text', nullable: false },
  { name: 'customer', label: 'Customer', type: 'text', nullable: true },
  {
    name: 'status',
    label: 'Status',
    type: 'select',
    options: ['draft', 'estimating', 'submitted', 'accepted', 'rejected'],
  },
  { name: 'description', label: 'Description', type: 'textarea', nullable: true },
  { name: 'metadata', label: 'Metadata (JSON)', type: 'json', nullable: false },
];

const SESSION_FIELDS = [
  { name: 'building_id', label: 'Building id', type: 'text', nullable: false },
  {
    name: 'status',
    label: 'Status',
    type: 'select',
    options: ['scheduled', 'in_progress', 'completed', 'cancelled'],
  },
  { name: 'notes', label: 'Notes', type: 'textarea', nullable: true },
];

export const RESOURCES = {
  projects: {
    key: 'projects',
    title: 'Projects',
    noun: 'project',
    collection: '/projects',
    fields: PROJECT_FIELDS,
    idOf: (item) => item.project_id,
    labelOf: (item) => item.name,
    columns: [['Customer', 'customer'], ['Status', 'status'], ['Updated', 'updated_at']],
    page: (body) => ({ items: body.result.items, next: body.result.next_cursor }),
    item: (body) => body.result,
    write: { method: 'PUT', type: 'application/json' },
  },
  sessions: {
    key: 'sessions',
    title: 'Test sessions',
    noun: 'test session',
    collection: '/v1/tests/sessions',
    fields: SESSION_FIELDS,
    idOf: (item) => item.id,
    labelOf: (item) => `Session ${item.id.slice(0, 8)}`,
    columns: [['Building', 'building_id'], ['Status', 'status'], ['Updated', 'updated_at']],
    page: (body) => ({ items: body.data, next: body.next_cursor }),
    item: (body) => body,
    write: { method: 'PATCH', type: 'application/merge-patch+json' },
  },
};
