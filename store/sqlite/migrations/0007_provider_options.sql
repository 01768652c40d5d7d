-- 0007: key settings become provider-neutral. The Azure fields of a
-- customer key record's settings (directory_id, client_id, credential) move
-- from the top of its data document into "options", the provider's own
-- block, which the lifecycle carries opaque and the Azure connector
-- decodes. Records keep their settings hash, last test and secret: a
-- tenant's settings, test and key are the same after the migration.
UPDATE lifecycle_keys
SET data = json_set(
	json_remove(data, '$.directory_id', '$.client_id', '$.credential'),
	'$.options', json_object(
		'directory_id', coalesce(json_extract(data, '$.directory_id'), ''),
		'client_id', coalesce(json_extract(data, '$.client_id'), ''),
		'credential', coalesce(json_extract(data, '$.credential'), '')))
WHERE json_type(data, '$.options') IS NULL;
