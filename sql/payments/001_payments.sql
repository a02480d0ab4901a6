-- SPDX-License-Identifier: MIT
--
-- The demo payments service (database saga_payments): account balances and
-- a ledger of charges and refunds.

CREATE TABLE accounts (
	customer_id text   NOT NULL PRIMARY KEY,
	balance     bigint NOT NULL CHECK (balance >= 0) -- cents
);

CREATE TABLE payments (
	saga_id     uuid        NOT NULL PRIMARY KEY,
	customer_id text        NOT NULL REFERENCES accounts (customer_id),
	amount      bigint      NOT NULL CHECK (amount >= 0),
	state       text        NOT NULL CHECK (state IN ('CHARGED',
	                            'REFUNDED')),
	created_at  timestamptz NOT NULL DEFAULT now(),
	updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Seed data: alice and carol can pay, bob is too poor.
INSERT INTO accounts (customer_id, balance) VALUES
	('alice', 1000000),
	('carol', 500000),
	('bob', 500);
