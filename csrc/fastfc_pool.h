/*
 * fastfc_pool.h -- a tiny fork-join pool for the few cores a training step runs on.
 *
 * Why: OpenBLAS threads each GEMM on its own, then leaves its worker spinning while the
 * caller does everything that is not a GEMM (bias, activation, loss, the optimiser
 * update).  On a 2-core machine that wastes the second core for a good part of a step
 * and makes the small GEMMs of narrow layers pay OpenBLAS's fork-join cost each time.
 * Inside a Net step fastfc splits the work that is not a GEMM itself (the update into
 * slices, the minibatch gather into rows), one part per thread, and when the user has
 * made OpenBLAS single-threaded, each large GEMM into row or column blocks too (fastfc
 * never changes OpenBLAS's thread count).  Between parts the workers spin for a short while (the next task of a step
 * follows within microseconds), then sleep on a condition variable.  The caller waits
 * for its workers the same way: a bounded spin, then a sleep on a second condition
 * variable, so that a worker descheduled by a busy machine does not cost the caller a
 * whole time slice of spinning (and the spin does not steal that worker's core).
 *
 * The pool is process-wide and serves one caller at a time: ffc_pool_try_own() is a
 * try-lock, and a caller that does not get the pool simply runs its work serially.
 * Its state is static, so exactly one extension module (fastfc._kernels.blas) may
 * include this header; the others call the pool through blas's cdef functions.
 * After fork() the child starts with no workers (pthread_atfork).  Without POSIX
 * threads (Windows builds) every function here degrades to serial execution.
 */
#ifndef FASTFC_POOL_H
#define FASTFC_POOL_H

#define FFC_POOL_MAX 4          /* parts of one task: the caller + up to 3 workers */

typedef void (*ffc_task_fn)(void *arg, int part, int nparts);

#if defined(_WIN32) || defined(FFC_NO_POOL)

static int ffc_pool_try_own(void) { return 0; }
static int ffc_pool_setup(int nparts) { (void)nparts; return 1; }
static void ffc_pool_release(void) {}
static void ffc_pool_run(ffc_task_fn fn, void *arg) { fn(arg, 0, 1); }
static int ffc_pool_parts(void) { return 1; }
static void ffc_pool_set_spin(long ns) { (void)ns; }
static long ffc_pool_tasks(void) { return 0; }

#else

#include <pthread.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FFC_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define FFC_CPU_RELAX() __asm__ __volatile__("yield")
#else
#define FFC_CPU_RELAX() ((void)0)
#endif

#define FFC_SPIN_NS 300000L     /* how long an idle worker spins before it sleeps */
/* The spin actually used: FFC_SPIN_NS while a step splits its GEMMs over the pool (the
 * next task follows within microseconds), 0 while OpenBLAS runs the GEMMs on its own
 * threads -- a spinning worker would then take a core from them.  Set by the owner. */
static long ffc_spin_ns = FFC_SPIN_NS;
/* How long the caller spins for its workers before it sleeps.  A worker that is running
 * finishes its part within microseconds of the caller; one that is not (the cores are
 * busy with other processes) may take a whole time slice, and spinning through that
 * would only keep a core from it.  (Measured: 20 us made the W1 step of bench/ 3%
 * slower on an idle machine, from futex wake-ups after parts that were just late;
 * 200 us matched the unbounded spin.) */
#define FFC_WAIT_SPIN_NS 200000L

typedef struct {
    pthread_t thread;
    int index;                  /* 1 .. FFC_POOL_MAX - 1 (the caller is part 0) */
    long done;                  /* generation of the last task this worker finished */
} ffc_worker;

static struct {
    int started;                /* workers created in this process */
    int nparts;                 /* parts of the current task (1 = pool not in use) */
    int busy;                   /* a caller owns the pool */
    long gen;                   /* generation of the last posted task */
    int sleepers;               /* workers waiting on `wake` */
    int waiting;                /* the caller sleeps on `finished` until its parts are done */
    ffc_task_fn fn;
    void *arg;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_cond_t finished;
    ffc_worker workers[FFC_POOL_MAX - 1];
} ffc_pool = {0, 1, 0, 0, 0, 0, NULL, NULL, PTHREAD_MUTEX_INITIALIZER,
              PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER};

static long ffc_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static void *ffc_worker_main(void *p)
{
    ffc_worker *self = (ffc_worker *)p;
    long seen = self->done;     /* the generation current when the worker was created */
    for (;;) {
        long gen;
        long spin_start = ffc_now_ns();
        int spins = 0;
        while ((gen = __atomic_load_n(&ffc_pool.gen, __ATOMIC_SEQ_CST)) == seen) {
            FFC_CPU_RELAX();
            if (++spins == 256) {
                spins = 0;
                if (ffc_now_ns() - spin_start >= __atomic_load_n(&ffc_spin_ns,
                                                                 __ATOMIC_RELAXED)) {
                    pthread_mutex_lock(&ffc_pool.lock);
                    __atomic_add_fetch(&ffc_pool.sleepers, 1, __ATOMIC_SEQ_CST);
                    while (__atomic_load_n(&ffc_pool.gen, __ATOMIC_SEQ_CST) == seen)
                        pthread_cond_wait(&ffc_pool.wake, &ffc_pool.lock);
                    __atomic_sub_fetch(&ffc_pool.sleepers, 1, __ATOMIC_SEQ_CST);
                    pthread_mutex_unlock(&ffc_pool.lock);
                    spin_start = ffc_now_ns();
                }
            }
        }
        seen = gen;
        if (self->index < ffc_pool.nparts)
            ffc_pool.fn(ffc_pool.arg, self->index, ffc_pool.nparts);
        __atomic_store_n(&self->done, gen, __ATOMIC_SEQ_CST);
        /* The caller may have given up spinning.  Both sides use seq_cst on `done` and
         * `waiting`, so either it sees our `done` or we see its `waiting`; the signal is
         * sent under the lock, which the caller holds from its check to its wait. */
        if (__atomic_load_n(&ffc_pool.waiting, __ATOMIC_SEQ_CST)) {
            pthread_mutex_lock(&ffc_pool.lock);
            pthread_cond_broadcast(&ffc_pool.finished);
            pthread_mutex_unlock(&ffc_pool.lock);
        }
    }
    return NULL;
}

static void ffc_pool_after_fork_child(void)
{
    /* the workers did not survive the fork: start again from nothing */
    pthread_mutex_t fresh_lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t fresh_cond = PTHREAD_COND_INITIALIZER;
    pthread_cond_t fresh_finished = PTHREAD_COND_INITIALIZER;
    ffc_pool.started = 0;
    ffc_pool.nparts = 1;
    ffc_pool.busy = 0;
    ffc_pool.gen = 0;
    ffc_pool.sleepers = 0;
    ffc_pool.waiting = 0;
    ffc_pool.lock = fresh_lock;
    ffc_pool.wake = fresh_cond;
    ffc_pool.finished = fresh_finished;
}

/* Make sure `want` workers exist; returns how many do (fewer if creation failed).
 * Workers are only ever added: every one of them takes part in every later task. */
static int ffc_pool_start(int want)
{
    static int atfork_done = 0;
    int i;
    if (!atfork_done) {
        pthread_atfork(NULL, NULL, ffc_pool_after_fork_child);
        atfork_done = 1;
    }
    for (i = ffc_pool.started; i < want; ++i) {
        ffc_worker *w = &ffc_pool.workers[i];
        pthread_attr_t attr;
        w->index = i + 1;
        w->done = ffc_pool.gen;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&w->thread, &attr, ffc_worker_main, w) != 0) {
            pthread_attr_destroy(&attr);
            break;
        }
        pthread_attr_destroy(&attr);
        ffc_pool.started = i + 1;
    }
    return ffc_pool.started;
}

static __thread int ffc_tls_parts = 1;   /* > 1 only on the thread owning the pool */

/*
 * Try to own the pool (a try-lock); returns 1 if this thread now owns it.  The owner
 * then calls ffc_pool_setup() and, whatever that returns, ffc_pool_release().  Owning
 * first and reading anything shared (such as the BLAS thread count) afterwards means a
 * value read is never a transient one set by another owner.
 */
static int ffc_pool_try_own(void)
{
    if (ffc_tls_parts > 1)
        return 0;
    return !__atomic_exchange_n(&ffc_pool.busy, 1, __ATOMIC_ACQUIRE);
}

/* The owner's tasks are split into `nparts` parts (clamped to FFC_POOL_MAX and to the
 * workers that could be created); returns that count (1: run serially). */
static int ffc_pool_setup(int nparts)
{
    int have;
    if (nparts > FFC_POOL_MAX)
        nparts = FFC_POOL_MAX;
    if (nparts < 2)
        return 1;
    have = ffc_pool_start(nparts - 1);
    if (nparts > have + 1)
        nparts = have + 1;
    if (nparts < 2)
        return 1;
    ffc_pool.nparts = nparts;
    ffc_tls_parts = nparts;
    return nparts;
}

static void ffc_pool_release(void)
{
    ffc_tls_parts = 1;
    ffc_pool.nparts = 1;
    __atomic_store_n(&ffc_pool.busy, 0, __ATOMIC_RELEASE);
}

/* How long idle workers spin before they sleep (ns); called by the pool's owner. */
static void ffc_pool_set_spin(long ns)
{
    __atomic_store_n(&ffc_spin_ns, ns, __ATOMIC_RELAXED);
}

/* Parts this thread's tasks are split into (1 unless it owns the pool). */
static int ffc_pool_parts(void)
{
    return ffc_tls_parts;
}

/* Tasks handed to the workers so far in this process (for tests and diagnostics). */
static long ffc_pool_tasks(void)
{
    return __atomic_load_n(&ffc_pool.gen, __ATOMIC_SEQ_CST);
}

/* Run fn(arg, p, nparts) for p = 0 .. nparts-1; part 0 on the calling thread.  Only
 * the owner of the pool may call it with nparts > 1; returns when every part is done. */
static void ffc_pool_run(ffc_task_fn fn, void *arg)
{
    int nparts = ffc_tls_parts, i;
    long gen;
    if (nparts < 2) {
        fn(arg, 0, 1);
        return;
    }
    ffc_pool.fn = fn;
    ffc_pool.arg = arg;
    gen = __atomic_add_fetch(&ffc_pool.gen, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&ffc_pool.sleepers, __ATOMIC_SEQ_CST) > 0) {
        pthread_mutex_lock(&ffc_pool.lock);
        pthread_cond_broadcast(&ffc_pool.wake);
        pthread_mutex_unlock(&ffc_pool.lock);
    }
    fn(arg, 0, nparts);
    for (i = 0; i < ffc_pool.started; ++i) {
        long spin_start = 0;
        int spins = 0;
        while (__atomic_load_n(&ffc_pool.workers[i].done, __ATOMIC_SEQ_CST) != gen) {
            FFC_CPU_RELAX();
            if (++spins < 64)
                continue;
            spins = 0;
            if (spin_start == 0) {
                spin_start = ffc_now_ns();
                continue;
            }
            if (ffc_now_ns() - spin_start < FFC_WAIT_SPIN_NS)
                continue;
            /* the worker is late (most likely descheduled): sleep until it is done */
            pthread_mutex_lock(&ffc_pool.lock);
            __atomic_store_n(&ffc_pool.waiting, 1, __ATOMIC_SEQ_CST);
            while (__atomic_load_n(&ffc_pool.workers[i].done, __ATOMIC_SEQ_CST) != gen)
                pthread_cond_wait(&ffc_pool.finished, &ffc_pool.lock);
            __atomic_store_n(&ffc_pool.waiting, 0, __ATOMIC_SEQ_CST);
            pthread_mutex_unlock(&ffc_pool.lock);
        }
    }
}

#endif  /* POSIX threads */

/* [lo, hi) of part `part` of `n` items split in `nparts`, boundaries multiples of `align` */
static inline void ffc_part_range(long n, int part, int nparts, long align, long *lo, long *hi)
{
    long chunk = (n + nparts - 1) / nparts;
    chunk = (chunk + align - 1) / align * align;
    *lo = chunk * part < n ? chunk * part : n;
    *hi = chunk * (part + 1) < n ? chunk * (part + 1) : n;
}

#endif  /* FASTFC_POOL_H */
