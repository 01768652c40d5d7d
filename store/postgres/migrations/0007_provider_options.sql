-- 0007: key settings become provider-neutral. The Azure fields of a
-- customer key record's settings (directory_id, client_id, credential) move
-- from the top of its data document into "options", the provider's own
-- block, which the lifecycle carries opaque and the Azure connector
-- decodes. Records keep their settings hash, last test and secret: a
-- tenant's settings, test and key are the same after the migration.
UPDATE lifecycle_keys
SET data = ((data::jsonb - 'directory_id' - 'client_id' - 'credential') || jsonb_build_object('options', jsonb_build_object(
	'directory_id', coalesce(data::jsonb ->> 'directory_id', ''),
	'client_id', coalesce(data::jsonb ->> 'client_id', ''),
	'credential', coalesce(data::jsonb ->> 'credential', ''))))::text
WHERE NOT (data::jsonb ? 'options');
