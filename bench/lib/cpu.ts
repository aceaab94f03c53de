import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

/** Clock ticks per second for /proc/<pid>/stat (USER_HZ, 100 on every Linux we run on). */
const CLK_TCK = 100;

/** utime + stime of a process, in ticks; null when it is gone (or not on this machine). */
function procTicks(pid: number): number | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // After "pid (comm) ": state=0, ppid=1, ..., utime=11, stime=12
    return Number(f[11]) + Number(f[12]);
  } catch {
    return null;
  }
}

export function parentPid(pid: number): number | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return null;
  }
}

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

function machineTicks(): { busy: number; total: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const v = line.trim().split(/\s+/).slice(1, 9).map(Number);
    const idle = v[3] + (v[4] ?? 0);
    const total = v.reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return null;
  }
}

/** CPU use over a window, in percent of one core (so 200 = two cores busy). */
export interface CpuUsage {
  cores: number;
  seconds: number;
  servicePct: number | null;
  /** The bench's PostgreSQL server: its postmaster and every child (backends, walwriter, ...). */
  postgresPct: number | null;
  generatorPct: number;
  pgbenchPct: number | null;
  machineBusyPct: number | null;
  /** Busy time of everything else on the machine (other jobs disturb the figures). */
  otherPct: number | null;
}

type Group = 'service' | 'postgres' | 'pgbench';

/**
 * Samples CPU time of the service, the PostgreSQL server's processes, pgbench and this (load
 * generator) process over a window. Polls every 250 ms so that processes ending inside the
 * window (pgbench and its backends) still count up to their last sample.
 */
export class CpuProbe {
  private readonly t0 = performance.now();
  private readonly self0 = process.cpuUsage();
  private readonly machine0 = machineTicks();
  /** pid → [group, ticks at first sight (0 when born inside the window), last ticks seen]. */
  private readonly seen = new Map<number, { group: Group; base: number; last: number }>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pids: {
      service?: number | null;
      postmaster?: number | null;
      pgbench?: number | null;
    },
  ) {
    this.sample(true);
    this.timer = setInterval(() => this.sample(false), 250);
    this.timer.unref();
  }

  /** A process started after the window opened (pgbench): all its time counts. */
  watchPgbench(pid: number | undefined): void {
    if (pid) {
      this.pids.pgbench = pid;
      this.note(pid, 'pgbench', false);
    }
  }

  private note(pid: number, group: Group, first: boolean): void {
    const t = procTicks(pid);
    if (t === null) return;
    const prev = this.seen.get(pid);
    if (prev) prev.last = t;
    else this.seen.set(pid, { group, base: first ? t : 0, last: t });
  }

  private sample(first: boolean): void {
    if (this.pids.service) this.note(this.pids.service, 'service', first);
    if (this.pids.pgbench) this.note(this.pids.pgbench, 'pgbench', first);
    const pm = this.pids.postmaster;
    if (pm) {
      this.note(pm, 'postgres', first);
      for (const c of childPids(pm)) this.note(c, 'postgres', first);
    }
  }

  stop(): CpuUsage {
    clearInterval(this.timer);
    this.sample(false);
    const seconds = (performance.now() - this.t0) / 1000;
    const self = process.cpuUsage(this.self0);
    const ticks: Record<Group, number> = { service: 0, postgres: 0, pgbench: 0 };
    for (const s of this.seen.values()) ticks[s.group] += s.last - s.base;
    const pct = (t: number): number => (t / CLK_TCK / seconds) * 100;
    const m1 = machineTicks();
    const cores = cpus().length;
    const generatorPct = ((self.user + self.system) / 1e6 / seconds) * 100;
    const machineBusyPct =
      this.machine0 && m1 && m1.total > this.machine0.total
        ? ((m1.busy - this.machine0.busy) / (m1.total - this.machine0.total)) * 100 * cores
        : null;
    const servicePct = this.pids.service ? pct(ticks.service) : null;
    const postgresPct = this.pids.postmaster ? pct(ticks.postgres) : null;
    const pgbenchPct = this.pids.pgbench ? pct(ticks.pgbench) : null;
    const known = (servicePct ?? 0) + (postgresPct ?? 0) + (pgbenchPct ?? 0) + generatorPct;
    return {
      cores,
      seconds,
      servicePct,
      postgresPct,
      generatorPct,
      pgbenchPct,
      machineBusyPct,
      otherPct: machineBusyPct === null ? null : Math.max(0, machineBusyPct - known),
    };
  }
}

/** Resident set size of a process in MiB, from /proc/<pid>/status (VmRSS). */
export function rssMiB(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}
