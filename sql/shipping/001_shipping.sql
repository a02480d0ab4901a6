-- SPDX-License-Identifier: MIT
--
-- The demo shipping service (database saga_shipping): one shipment per
-- order.

CREATE TABLE shipments (
	saga_id    uuid        NOT NULL PRIMARY KEY,
	sku        text        NOT NULL,
	qty        integer     NOT NULL CHECK (qty > 0),
	address    text        NOT NULL,
	state      text        NOT NULL CHECK (state IN ('SCHEDULED')),
	created_at timestamptz NOT NULL DEFAULT now()
);
