-- With several instances, one inbox worker at a time may work on a message: it claims the
-- row with a short lease (renewed while it works), so a crashed instance's rows are taken
-- over once the lease runs out. `lease_until` is Unix ms; 0 means free.
ALTER TABLE inbox ADD COLUMN lease_owner TEXT;
ALTER TABLE inbox ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0;
