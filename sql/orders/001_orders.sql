-- SPDX-License-Identifier: MIT
--
-- The demo orders service (database saga_orders): one row per order.

CREATE TABLE orders (
	order_id    uuid        NOT NULL PRIMARY KEY, -- the saga id
	customer_id text        NOT NULL,
	sku         text        NOT NULL,
	qty         integer     NOT NULL CHECK (qty > 0),
	amount      bigint      NOT NULL CHECK (amount >= 0), -- cents
	state       text        NOT NULL CHECK (state IN ('PENDING',
	                            'APPROVED', 'REJECTED')),
	created_at  timestamptz NOT NULL DEFAULT now(),
	updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_customer_idx ON orders (customer_id, created_at DESC);
