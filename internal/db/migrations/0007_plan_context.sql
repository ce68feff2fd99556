-- What the caller needs to run a plan again after a restart, as opaque JSON; NULL when it stored none.
ALTER TABLE plans ADD COLUMN context TEXT;
