-- Durable deadlines: commands that fall due at a time (a trial's end, a retry, an expiry).
--
-- Rows are written by the `deadlines` projection from events (so scheduling is derived from
-- the log, exactly once, and survives restarts) and executed by the deadline runner, which
-- claims due rows for a short lease (`locked_until`, set with `for update skip locked` in a
-- transaction of its own, so no lock is held while commands run: one executor per row
-- across servers, and a crashed executor's rows come back when the lease ends) and
-- issues the command with a command id derived from `deadline_id` (so a crash between the
-- command's append and `status = 'done'` replays the recorded outcome instead of running
-- twice).
create table deadlines
(
    deadline_id  uuid primary key,
    kind         text        not null,
    aggregate_id text        not null,
    due_at       timestamptz not null,
    payload      jsonb       not null default '{}',
    status       text        not null default 'pending' check (status in ('pending', 'done', 'failed')),
    attempts     integer     not null default 0,
    locked_until timestamptz,
    last_error   text,
    scheduled_at timestamptz not null default now(),
    completed_at timestamptz
);

create index deadlines_due on deadlines (due_at) where status = 'pending';
