"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-12-01 18:52:53.548258
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('districts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('groups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('district_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['district_id'], ['districts.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('homes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('citizen_ref', sa.String(length=120), nullable=False),
    sa.Column('address', sa.String(length=300), nullable=False),
    sa.Column('district_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['district_id'], ['districts.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('citizen_ref')
    )
    op.create_table('staff',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=120), nullable=False),
    sa.Column('full_name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('external_ref', sa.String(length=120), nullable=True),
    sa.Column('district_id', sa.Integer(), nullable=True),
    sa.Column('password_hash', sa.String(length=200), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('revoked_at', sa.BigInteger(), nullable=True),
    sa.Column('failed_logins', sa.Integer(), nullable=False),
    sa.Column('lockouts', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['district_id'], ['districts.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('external_ref'),
    sa.UniqueConstraint('username')
    )
    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.BigInteger(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('subject', sa.String(length=120), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['staff.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_action'), ['action'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_log_at'), ['at'], unique=False)

    op.create_table('group_members',
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('group_id', 'staff_id')
    )
    op.create_table('locks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lock_id', sa.String(length=16), nullable=False),
    sa.Column('home_id', sa.Integer(), nullable=True),
    sa.Column('board', sa.String(length=60), nullable=False),
    sa.Column('epoch', sa.BigInteger(), nullable=False),
    sa.Column('genesis_epoch', sa.BigInteger(), nullable=False),
    sa.Column('deny_version', sa.BigInteger(), nullable=False),
    sa.Column('journal_seq', sa.BigInteger(), nullable=False),
    sa.Column('journal_chain', sa.String(length=16), nullable=True),
    sa.Column('journal_epoch', sa.BigInteger(), nullable=False),
    sa.Column('seen_at', sa.BigInteger(), nullable=True),
    sa.Column('seen_flags', sa.Integer(), nullable=True),
    sa.Column('seen_deny_version', sa.BigInteger(), nullable=True),
    sa.Column('seen_journal_head', sa.BigInteger(), nullable=True),
    sa.Column('seen_epoch', sa.BigInteger(), nullable=True),
    sa.Column('seen_battery_pct', sa.Integer(), nullable=True),
    sa.Column('seen_battery_mv', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['home_id'], ['homes.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('lock_id')
    )
    op.create_table('phones',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('label', sa.String(length=120), nullable=False),
    sa.Column('revoked_at', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('last_seen_at', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('phones', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_phones_staff_id'), ['staff_id'], unique=False)

    op.create_table('planned_visits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('home_id', sa.Integer(), nullable=False),
    sa.Column('start', sa.BigInteger(), nullable=False),
    sa.Column('end', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['home_id'], ['homes.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('planned_visits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_planned_visits_home_id'), ['home_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_planned_visits_staff_id'), ['staff_id'], unique=False)

    op.create_table('battery_samples',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lock_pk', sa.Integer(), nullable=False),
    sa.Column('at', sa.BigInteger(), nullable=False),
    sa.Column('mv', sa.Integer(), nullable=False),
    sa.Column('pct', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=12), nullable=False),
    sa.ForeignKeyConstraint(['lock_pk'], ['locks.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('battery_samples', schema=None) as batch_op:
        batch_op.create_index('ix_battery_lock_at', ['lock_pk', 'at'], unique=False)

    op.create_table('deny_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lock_pk', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Integer(), nullable=False),
    sa.Column('ident', sa.BigInteger(), nullable=False),
    sa.Column('expires', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['lock_pk'], ['locks.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('lock_pk', 'kind', 'ident')
    )
    with op.batch_alter_table('deny_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deny_entries_lock_pk'), ['lock_pk'], unique=False)

    op.create_table('grants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=True),
    sa.Column('group_id', sa.Integer(), nullable=True),
    sa.Column('lock_pk', sa.Integer(), nullable=True),
    sa.Column('home_id', sa.Integer(), nullable=True),
    sa.Column('district_id', sa.Integer(), nullable=True),
    sa.Column('rights', sa.Integer(), nullable=False),
    sa.Column('valid_from', sa.BigInteger(), nullable=False),
    sa.Column('valid_until', sa.BigInteger(), nullable=True),
    sa.Column('win_start', sa.Integer(), nullable=False),
    sa.Column('win_end', sa.Integer(), nullable=False),
    sa.Column('win_days', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('revoked_at', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['staff.id'], ),
    sa.ForeignKeyConstraint(['district_id'], ['districts.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['home_id'], ['homes.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['lock_pk'], ['locks.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grants_group_id'), ['group_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_grants_staff_id'), ['staff_id'], unique=False)

    op.create_table('journal_gaps',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lock_pk', sa.Integer(), nullable=False),
    sa.Column('from_seq', sa.BigInteger(), nullable=False),
    sa.Column('to_seq', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('detected_at', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['lock_pk'], ['locks.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('lock_pk', 'from_seq')
    )
    with op.batch_alter_table('journal_gaps', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_journal_gaps_lock_pk'), ['lock_pk'], unique=False)

    op.create_table('journal_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lock_pk', sa.Integer(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('epoch', sa.BigInteger(), nullable=False),
    sa.Column('time', sa.BigInteger(), nullable=False),
    sa.Column('event', sa.Integer(), nullable=False),
    sa.Column('flags', sa.Integer(), nullable=False),
    sa.Column('arg16', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('ticket_id', sa.BigInteger(), nullable=False),
    sa.Column('arg', sa.BigInteger(), nullable=False),
    sa.Column('chain', sa.String(length=16), nullable=False),
    sa.Column('ingested_at', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['lock_pk'], ['locks.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('lock_pk', 'seq')
    )
    with op.batch_alter_table('journal_records', schema=None) as batch_op:
        batch_op.create_index('ix_journal_lock_time', ['lock_pk', 'time'], unique=False)

    op.create_table('lock_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lock_pk', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('sealed_master', sa.LargeBinary(), nullable=True),
    sa.Column('sealed_jm', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('destroyed_at', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['lock_pk'], ['locks.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('lock_pk', 'epoch')
    )
    with op.batch_alter_table('lock_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lock_keys_lock_pk'), ['lock_pk'], unique=False)

    op.create_table('rekeys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lock_pk', sa.Integer(), nullable=False),
    sa.Column('old_epoch', sa.BigInteger(), nullable=False),
    sa.Column('new_epoch', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('onsite', sa.Boolean(), nullable=False),
    sa.Column('message', sa.String(length=120), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('finished_at', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['staff.id'], ),
    sa.ForeignKeyConstraint(['lock_pk'], ['locks.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('rekeys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rekeys_lock_pk'), ['lock_pk'], unique=False)

    op.create_table('tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('phone_id', sa.Integer(), nullable=True),
    sa.Column('expires_at', sa.BigInteger(), nullable=True),
    sa.Column('revoked_at', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['phone_id'], ['phones.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('digest')
    )
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tokens_staff_id'), ['staff_id'], unique=False)

    op.create_table('tickets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lock_pk', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.BigInteger(), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('phone_id', sa.Integer(), nullable=True),
    sa.Column('grant_id', sa.Integer(), nullable=True),
    sa.Column('not_before', sa.BigInteger(), nullable=False),
    sa.Column('not_after', sa.BigInteger(), nullable=False),
    sa.Column('issued_at', sa.BigInteger(), nullable=False),
    sa.Column('rights', sa.Integer(), nullable=False),
    sa.Column('record', sa.String(length=82), nullable=False),
    sa.Column('revoked_at', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['grant_id'], ['grants.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['lock_pk'], ['locks.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['phone_id'], ['phones.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tickets_grant_id'), ['grant_id'], unique=False)
        batch_op.create_index('ix_tickets_lock_after', ['lock_pk', 'not_after'], unique=False)
        batch_op.create_index(batch_op.f('ix_tickets_phone_id'), ['phone_id'], unique=False)
        batch_op.create_index('ix_tickets_staff_after', ['staff_id', 'not_after'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index('ix_tickets_staff_after')
        batch_op.drop_index(batch_op.f('ix_tickets_phone_id'))
        batch_op.drop_index('ix_tickets_lock_after')
        batch_op.drop_index(batch_op.f('ix_tickets_grant_id'))

    op.drop_table('tickets')
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tokens_staff_id'))

    op.drop_table('tokens')
    with op.batch_alter_table('rekeys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rekeys_lock_pk'))

    op.drop_table('rekeys')
    with op.batch_alter_table('lock_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lock_keys_lock_pk'))

    op.drop_table('lock_keys')
    with op.batch_alter_table('journal_records', schema=None) as batch_op:
        batch_op.drop_index('ix_journal_lock_time')

    op.drop_table('journal_records')
    with op.batch_alter_table('journal_gaps', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_journal_gaps_lock_pk'))

    op.drop_table('journal_gaps')
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grants_staff_id'))
        batch_op.drop_index(batch_op.f('ix_grants_group_id'))

    op.drop_table('grants')
    with op.batch_alter_table('deny_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deny_entries_lock_pk'))

    op.drop_table('deny_entries')
    with op.batch_alter_table('battery_samples', schema=None) as batch_op:
        batch_op.drop_index('ix_battery_lock_at')

    op.drop_table('battery_samples')
    with op.batch_alter_table('planned_visits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_planned_visits_staff_id'))
        batch_op.drop_index(batch_op.f('ix_planned_visits_home_id'))

    op.drop_table('planned_visits')
    with op.batch_alter_table('phones', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_phones_staff_id'))

    op.drop_table('phones')
    op.drop_table('locks')
    op.drop_table('group_members')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_at'))
        batch_op.drop_index(batch_op.f('ix_audit_log_action'))

    op.drop_table('audit_log')
    op.drop_table('staff')
    op.drop_table('homes')
    op.drop_table('groups')
    op.drop_table('districts')
