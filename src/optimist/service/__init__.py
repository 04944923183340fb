"""The reference service, ``optimist serve``: the admin, projects and test-sessions APIs,
built on the optimist library alone. Nothing in the library imports it."""
