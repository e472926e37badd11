"""battery samples carry the lock's measured motor sag

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 22:40:00

The sag is bits 24..31 of a BATTERY record's ``arg`` (10 mV steps, 0 = not measured yet);
samples ingested before this revision get it from their journal record (same lock, time
and mV; ``journal_records.arg`` is stored whole). HELLO samples carry none.
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

_EV_BATTERY = 11  # lockproto.codes.Event.BATTERY at the time of this revision


def upgrade() -> None:
    with op.batch_alter_table('battery_samples', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sag_mv', sa.Integer(), nullable=True))
    op.execute(sa.text(
        "UPDATE battery_samples SET sag_mv = ("
        " SELECT ((j.arg / 16777216) % 256) * 10 FROM journal_records j"
        " WHERE j.lock_pk = battery_samples.lock_pk AND j.time = battery_samples.at AND j.event = :ev"
        " AND j.arg16 = battery_samples.mv ORDER BY j.seq DESC LIMIT 1)"
        " WHERE source = 'journal'").bindparams(ev=_EV_BATTERY))
    op.execute(sa.text("UPDATE battery_samples SET sag_mv = NULL WHERE sag_mv = 0"))


def downgrade() -> None:
    with op.batch_alter_table('battery_samples', schema=None) as batch_op:
        batch_op.drop_column('sag_mv')
