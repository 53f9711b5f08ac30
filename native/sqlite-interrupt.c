/*
 * A SQLite extension that lets the gateway's main thread stop a statement running on a SQLite
 * connection in a worker thread. better-sqlite3 has no binding for sqlite3_interrupt(), and a
 * worker thread cannot be terminated while it is inside sqlite3_step(); this extension is the
 * missing binding. sqlite3_interrupt() is documented as safe to call from any thread.
 *
 * Two entry points:
 *   sqlite3_wtinterrupt_init      loaded by each worker's connection: registers the connection and
 *                                 adds wt_interrupt_token(), which returns its token, and
 *                                 wt_busy_timeout(ms), SQLite's busy timeout made interruptible.
 *   sqlite3_wtinterruptctl_init   loaded by the main thread's in-memory control connection only:
 *                                 adds wt_interrupt(token), which interrupts that connection and
 *                                 returns 1, or 0 when no open connection has that token.
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
#include <sqlite3ext.h>
#include <pthread.h>
#include <stdlib.h>
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
