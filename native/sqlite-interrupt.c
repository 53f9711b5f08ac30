/*
 * A SQLite extension that lets the gateway's main thread stop a statement running on a SQLite
 * connection in a worker thread. better-sqlite3 has no binding for sqlite3_interrupt(), and a
 * worker thread cannot be terminated while it is inside sqlite3_step(); this extension is the
 * missing binding. sqlite3_interrupt() is documented as safe to call from any thread.
 *
 * Three entry points:
 *   sqlite3_wtinterrupt_init      loaded by each worker's connection: registers the connection and
 *                                 adds wt_interrupt_token(), which returns its token, and
 *                                 wt_busy_timeout(ms), SQLite's busy timeout made interruptible.
 *   sqlite3_wtinterruptctl_init   loaded by the main thread's in-memory control connection only:
 *                                 adds wt_interrupt(token), which interrupts that connection and
 *                                 returns 1, or 0 when no open connection has that token.
 *   sqlite3_wtwatchdog_init       loaded by a connection the main thread itself runs reads on: a
 *                                 watchdog thread interrupts any statement of that connection that
 *                                 has run longer than its budget (wt_watchdog_budget(us) sets it, once),
 *                                 so SQL run on the event loop can hold it only that long.
 * wt_interrupt() is never added to a connection that runs callers' SQL, so a caller cannot stop
 * somebody else's statement.
 *
 * SQLite's own busy handler (sqlite3_busy_timeout) sleeps through an interrupt: a statement waiting
 * for another connection's write lock would go on waiting for the whole busy timeout. The handler
 * wt_busy_timeout() installs waits the same time in short sleeps and gives up once interrupted.
 *
 * A connection leaves the registry when it closes: SQLite calls the token function's destructor
 * while closing, before the connection's memory is freed, and the registry's lock keeps an
 * interrupt from touching a connection that is being closed.
 */
#if defined(__linux__)
#define _GNU_SOURCE /* pthread_setname_np */
#endif
#include <sqlite3ext.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
SQLITE_EXTENSION_INIT1

typedef struct Registered {
  sqlite3_int64 token;
  sqlite3 *db;
  int busy_timeout_ms;
  int busy_waited_ms; /* in the current wait for a lock; only its connection's thread touches it */
  struct Registered *next;
} Registered;

/* One registry per process: the shared library is loaded once however many connections load it. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static Registered *registry = 0;
static sqlite3_int64 last_token = 0;

static void token_function(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  (void)argv;
  sqlite3_result_int64(ctx, ((Registered *)sqlite3_user_data(ctx))->token);
}

/* Longest single sleep while waiting for a lock: how late an interrupt may be noticed. */
#define BUSY_SLEEP_MS 5

static int busy_wait(void *arg, int count) {
  Registered *r = arg;
  if (count == 0) r->busy_waited_ms = 0;
  if (sqlite3_is_interrupted(r->db) || r->busy_waited_ms >= r->busy_timeout_ms) return 0;
  int delay = count < 4 ? 1 : BUSY_SLEEP_MS;
  if (delay > r->busy_timeout_ms - r->busy_waited_ms) delay = r->busy_timeout_ms - r->busy_waited_ms;
  sqlite3_sleep(delay);
  r->busy_waited_ms += delay;
  return 1;
}

static void busy_timeout_function(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  Registered *r = sqlite3_user_data(ctx);
  sqlite3_int64 ms = sqlite3_value_int64(argv[0]);
  r->busy_timeout_ms = ms < 0 ? 0 : ms > 86400000 ? 86400000 : (int)ms;
  sqlite3_result_int(ctx, sqlite3_busy_handler(r->db, busy_wait, r));
}

static void unregister(void *entry) {
  pthread_mutex_lock(&registry_lock);
  for (Registered **at = &registry; *at; at = &(*at)->next) {
    if (*at == entry) {
      *at = ((Registered *)entry)->next;
      break;
    }
  }
  pthread_mutex_unlock(&registry_lock);
  free(entry);
}

static void interrupt_function(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  sqlite3_int64 token = sqlite3_value_int64(argv[0]);
  int found = 0;
  pthread_mutex_lock(&registry_lock);
  for (Registered *r = registry; r; r = r->next) {
    if (r->token == token) {
      sqlite3_interrupt(r->db);
      found = 1;
      break;
    }
  }
  pthread_mutex_unlock(&registry_lock);
  sqlite3_result_int(ctx, found);
}

#ifdef _WIN32
__declspec(dllexport)
#endif
int sqlite3_wtinterrupt_init(sqlite3 *db, char **errmsg, const sqlite3_api_routines *api) {
  SQLITE_EXTENSION_INIT2(api)
  (void)errmsg;
  Registered *entry = malloc(sizeof *entry);
  if (!entry) return SQLITE_NOMEM;
  entry->db = db;
  entry->busy_timeout_ms = 0;
  entry->busy_waited_ms = 0;
  pthread_mutex_lock(&registry_lock);
  entry->token = ++last_token;
  entry->next = registry;
  registry = entry;
  pthread_mutex_unlock(&registry_lock);
  /* On failure SQLite has already called the destructor, which unregistered and freed the entry. */
  int rc = sqlite3_create_function_v2(db, "wt_interrupt_token", 0, SQLITE_UTF8 | SQLITE_DIRECTONLY, entry, token_function, 0, 0, unregister);
  if (rc != SQLITE_OK) return rc;
  /* The entry lives as long as the connection: wt_interrupt_token's destructor frees it on close. */
  return sqlite3_create_function_v2(db, "wt_busy_timeout", 1, SQLITE_UTF8 | SQLITE_DIRECTONLY, entry, busy_timeout_function, 0, 0, 0);
}

#ifdef _WIN32
__declspec(dllexport)
#endif
int sqlite3_wtinterruptctl_init(sqlite3 *db, char **errmsg, const sqlite3_api_routines *api) {
  SQLITE_EXTENSION_INIT2(api)
  (void)errmsg;
  return sqlite3_create_function_v2(db, "wt_interrupt", 1, SQLITE_UTF8 | SQLITE_DIRECTONLY, 0, interrupt_function, 0, 0, 0);
}

/*
 * The watchdog. SQLite's progress handler would be the natural way to bound a statement from its
 * own thread, but better-sqlite3 builds SQLite without it (SQLITE_OMIT_PROGRESS_CALLBACK); so a
 * second thread watches the CPU time the statement's thread has used since it started. The
 * connection's trace hooks tell it when a statement starts (SQLITE_TRACE_STMT, at its first step)
 * and ends (SQLITE_TRACE_PROFILE, when it is done, fails or is reset). The statement's own thread
 * never waits on the watchdog: the watchdog holds the lock only between its waits and never across
 * a system call, and the statement's thread signals only when the watchdog sleeps with nothing to
 * watch. After a statement the watchdog stays awake for one more budget, looking again then, and
 * sleeps only once a whole budget passed with no statement started: statements that follow each
 * other closely (a steady load, even of one client) never signal, and the watchdog wakes about once
 * per budget, not once per statement.
 */
typedef struct Watchdog {
  sqlite3 *db;
  pthread_mutex_t lock;
  pthread_cond_t wake;
  pthread_t thread;
  sqlite3_int64 budget_ns;
  clockid_t cpu_clock;      /* CPU time of the thread running the statement */
  sqlite3_int64 watched;    /* the generation the watchdog times */
  sqlite3_int64 watched_cpu_ns; /* cpu_clock when the watchdog first saw that statement */
  sqlite3_int64 generation; /* counts statement starts: tells a new statement from the one it timed */
  int running;
  int idle; /* the watchdog waits without a deadline: a start must signal it */
  sqlite3_int64 looked; /* the generation the watchdog last found ended (or never started) */
  int awaiting_end; /* the watchdog interrupted the running statement and waits for its end */
  int stop;
  int budget_set; /* the budget is set once, by the gateway, before the connection runs anyone's SQL */
} Watchdog;

#if defined(__APPLE__)
#define WATCH_CLOCK CLOCK_REALTIME /* macOS condition variables time out on the wall clock only */
#else
#define WATCH_CLOCK CLOCK_MONOTONIC
#endif

static sqlite3_int64 clock_ns(clockid_t clock) {
  struct timespec ts;
  if (clock_gettime(clock, &ts) != 0) return 0;
  return (sqlite3_int64)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * A budget is spent in CPU time of the statement's thread, not wall time: a thread the scheduler
 * preempted (two busy cores, a load generator beside the gateway) has not run SQL meanwhile. The
 * watchdog reads that clock itself, from when it first sees a statement (reading another thread's
 * CPU clock is a system call, too dear for every statement's start): so a statement is stopped
 * after its budget and at most one more, counted from its start.
 */

/* Waits, the lock held, until signalled or `ns` of wall time passed. */
static void wait_budget(Watchdog *w, sqlite3_int64 ns) {
  sqlite3_int64 deadline = clock_ns(WATCH_CLOCK) + ns;
  struct timespec until = {(time_t)(deadline / 1000000000), (long)(deadline % 1000000000)};
  pthread_cond_timedwait(&w->wake, &w->lock, &until);
}

static void *watch(void *arg) {
  Watchdog *w = arg;
  pthread_mutex_lock(&w->lock);
  while (!w->stop) {
    if (!w->running) {
      if (w->looked != w->generation) {
        /* A statement started within the last budget: more may follow. Looking again in a budget
         * times one that starts meanwhile at most a budget late, inside the bound above, where
         * asking to be woken would cost every start a signal (a system call and a thread switch). */
        w->looked = w->generation;
        wait_budget(w, w->budget_ns);
        continue;
      }
      w->idle = 1;
      pthread_cond_wait(&w->wake, &w->lock);
      w->idle = 0;
      continue;
    }
    sqlite3_int64 generation = w->generation;
    clockid_t cpu_clock = w->cpu_clock;
    /* Reading another thread's CPU clock is a system call: not under the lock, which the statement's
     * thread takes at each start and end. */
    pthread_mutex_unlock(&w->lock);
    sqlite3_int64 cpu_ns = clock_ns(cpu_clock);
    pthread_mutex_lock(&w->lock);
    if (w->stop || !w->running) continue;
    if (w->generation != generation) {
      /* Another thread's statement: read its own clock. */
      if (w->cpu_clock != cpu_clock) continue;
      /* One began meanwhile on the same thread: timed from this reading, a little early (never late,
       * and without looping while short statements keep starting). */
      generation = w->generation;
    }
    sqlite3_int64 left = w->budget_ns;
    if (w->watched != generation) {
      w->watched = generation;
      w->watched_cpu_ns = cpu_ns;
    } else {
      left -= cpu_ns - w->watched_cpu_ns;
    }
    if (left <= 0) {
      sqlite3_interrupt(w->db);
      /* Wait for this statement to end (or a new one to start) before timing anything again. */
      w->awaiting_end = 1;
      while (!w->stop && w->running && w->generation == generation) pthread_cond_wait(&w->wake, &w->lock);
      w->awaiting_end = 0;
      continue;
    }
    /* The budget cannot be spent sooner than in as much wall time; look again then. */
    wait_budget(w, left);
  }
  pthread_mutex_unlock(&w->lock);
  return 0;
}

static int watch_trace(unsigned type, void *ctx, void *p, void *x) {
  (void)p;
  (void)x;
  Watchdog *w = ctx;
  pthread_mutex_lock(&w->lock);
  if (type == SQLITE_TRACE_STMT) {
    w->generation++;
#if defined(__APPLE__)
    w->cpu_clock = WATCH_CLOCK; /* macOS has no clock for another thread's CPU time: wall time there */
#else
    if (pthread_getcpuclockid(pthread_self(), &w->cpu_clock) != 0) w->cpu_clock = WATCH_CLOCK;
#endif
    w->running = 1;
    if (w->idle || w->awaiting_end) pthread_cond_signal(&w->wake);
  } else {
    w->running = 0;
    /* Otherwise the watchdog finds the statement ended when its deadline wakes it. */
    if (w->awaiting_end) pthread_cond_signal(&w->wake);
  }
  pthread_mutex_unlock(&w->lock);
  return 0;
}

static void watch_budget_function(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  Watchdog *w = sqlite3_user_data(ctx);
  sqlite3_int64 us = sqlite3_value_int64(argv[0]);
  pthread_mutex_lock(&w->lock);
  int was_set = w->budget_set;
  if (!was_set) w->budget_ns = (us < 1 ? 1 : us > 3600000000LL ? 3600000000LL : us) * 1000;
  w->budget_set = 1;
  pthread_mutex_unlock(&w->lock);
  /* Once set, SQL run later on the connection cannot lift its own bound. */
  if (was_set) sqlite3_result_error(ctx, "wt_watchdog_budget: the budget is already set", -1);
  else sqlite3_result_int64(ctx, us);
}

/* Called while the connection closes (the budget function's destructor): no statement runs any more. */
static void watch_end(void *arg) {
  Watchdog *w = arg;
  pthread_mutex_lock(&w->lock);
  w->stop = 1;
  pthread_cond_signal(&w->wake);
  pthread_mutex_unlock(&w->lock);
  pthread_join(w->thread, 0);
  pthread_cond_destroy(&w->wake);
  pthread_mutex_destroy(&w->lock);
  free(w);
}

#ifdef _WIN32
__declspec(dllexport)
#endif
int sqlite3_wtwatchdog_init(sqlite3 *db, char **errmsg, const sqlite3_api_routines *api) {
  SQLITE_EXTENSION_INIT2(api)
  (void)errmsg;
  Watchdog *w = calloc(1, sizeof *w);
  if (!w) return SQLITE_NOMEM;
  w->db = db;
  w->budget_ns = 1000000;
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
#if !defined(__APPLE__)
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
#endif
  pthread_mutex_init(&w->lock, 0);
  pthread_cond_init(&w->wake, &attr);
  pthread_condattr_destroy(&attr);
  if (pthread_create(&w->thread, 0, watch, w) != 0) {
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    free(w);
    return SQLITE_ERROR;
  }
#if defined(__linux__)
  /* Named before the connection is handed out, as top -H and /proc show it (tests count its wake-ups). */
  pthread_setname_np(w->thread, "wt-watchdog");
#endif
  /* One operation on one huge value (zeroblob(1e9), a replace() over a long text) runs inside a
   * single step, where no interrupt lands: values past a megabyte fail here (SQLITE_TOOBIG), and
   * the statement runs in a worker instead, where SQLite's own limit applies. */
  sqlite3_limit(db, SQLITE_LIMIT_LENGTH, 1 << 20);
  /* From here the function's destructor owns the watchdog: SQLite calls it on failure too. */
  int rc = sqlite3_create_function_v2(db, "wt_watchdog_budget", 1, SQLITE_UTF8 | SQLITE_DIRECTONLY, w, watch_budget_function, 0, 0, watch_end);
  if (rc != SQLITE_OK) return rc;
  return sqlite3_trace_v2(db, SQLITE_TRACE_STMT | SQLITE_TRACE_PROFILE, watch_trace, w);
}
