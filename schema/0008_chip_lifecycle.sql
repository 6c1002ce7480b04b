-- chiploc schema 0008: when and why a chip was deactivated, as `chiploc chip
-- deactivate SERIAL --reason TEXT` records it (`chip reactivate` clears
-- both). NULL while the chip is active, and for a chip deactivated before
-- this migration or by hand. An inactive chip is refused by every landmark
-- (REFUSE_INACTIVE) and not attested by the verifier; its rows stay.
-- Never edit this file after it has shipped: add a new numbered file.

ALTER TABLE chips ADD COLUMN deactivated_at timestamptz;
ALTER TABLE chips ADD COLUMN deactivation_reason text;
ALTER TABLE chips ADD CONSTRAINT chips_deactivation_of_inactive
  CHECK (NOT active OR (deactivated_at IS NULL AND deactivation_reason IS NULL));
