-- SPDX-License-Identifier: MIT
--
-- The demo inventory service (database saga_inventory): stock per SKU and
-- one reservation per order.

CREATE TABLE stock (
	sku       text    NOT NULL PRIMARY KEY,
	available integer NOT NULL CHECK (available >= 0),
	reserved  integer NOT NULL CHECK (reserved >= 0)
);

CREATE TABLE reservations (
	saga_id    uuid        NOT NULL PRIMARY KEY,
	sku        text        NOT NULL REFERENCES stock (sku),
	qty        integer     NOT NULL CHECK (qty > 0),
	state      text        NOT NULL CHECK (state IN ('RESERVED',
	                           'RELEASED')),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);

-- Seed data: plenty of widgets and gizmos, a single gadget (too scarce).
INSERT INTO stock (sku, available, reserved) VALUES
	('WIDGET', 1000, 0),
	('GIZMO', 500, 0),
	('GADGET', 1, 0);
