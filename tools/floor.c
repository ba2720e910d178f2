// SPDX-License-Identifier: GPL-2.0
/* The floor under tapir's overhead on this machine: a minimal payload-reading tracer to run beside
 * the benchmark's servers, and the cost of each kernel helper such a tracer needs. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>
#include "floor.h"
#include "floor.skel.h"

/*
 *   floor watch CGROUP_DIR...   follow the cgroups' sockets as the least such tracer must (see
 *                               floor.bpf.c) until SIGINT or SIGTERM
 *   floor skb CGROUP_DIR...     the same at the cgroups' socket buffers (cgroup_skb), reading no
 *                               process memory
 *   floor costs [CALLS]         nanoseconds per call of each helper, as "name ns" lines
 */

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int silent(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

static void only(struct floor_bpf *skel, const char *prefix)
{
	struct bpf_program *p;

	bpf_object__for_each_program (p, skel->obj)
		bpf_program__set_autoload(p,
					  !strncmp(bpf_program__name(p), prefix, strlen(prefix)));
}

#define MAX_CGROUPS 64

/*
 * Watch the cgroup directories @argv until SIGINT or SIGTERM: at the socket hooks (@skb 0) or
 * at the cgroups' socket buffers (@skb 1); then print the answers seen and their mean latency.
 */
static int do_watch(int argc, char **argv, int skb)
{
	struct bpf_link *links[2 * MAX_CGROUPS] = {};
	struct floor_agg a = {};
	struct floor_bpf *skel;
	struct stat st;
	__u64 id, answers = 0, sum = 0;
	__u32 one = 1;
	int i, fd, e, nlinks = 0, err = 1;

	if (argc > MAX_CGROUPS) {
		fprintf(stderr, "floor: at most %d cgroups\n", MAX_CGROUPS);
		return 1;
	}
	skel = floor_bpf__open();
	if (!skel) {
		fprintf(stderr, "floor: open: %s\n", strerror(errno));
		return 1;
	}
	only(skel, skb ? "skb_" : "floor_");
	if (floor_bpf__load(skel) || (!skb && floor_bpf__attach(skel))) {
		fprintf(stderr, skb ? "floor: this kernel cannot run the socket-buffer floor "
				      "(cgroup_skb, socket storage)\n"
				    : "floor: this kernel cannot run the floor tracer "
				      "(tp_btf/sock_*_length, bpf_task_pt_regs)\n");
		err = 2;
		goto cleanup;
	}
	for (i = 0; i < argc; i++) {
		/* A cgroup v2 directory's inode number is the cgroup's id. */
		if (stat(argv[i], &st)) {
			fprintf(stderr, "floor: %s: %s\n", argv[i], strerror(errno));
			goto cleanup;
		}
		id = st.st_ino;
		/* The socket hooks filter on the cgroup; cgroup_skb programs hang on it. */
		if ((!skb &&
		     bpf_map_update_elem(bpf_map__fd(skel->maps.watched), &id, &one, BPF_ANY)) ||
		    bpf_map_update_elem(bpf_map__fd(skel->maps.agg), &id, &a, BPF_ANY)) {
			fprintf(stderr, "floor: watching %s: %s\n", argv[i], strerror(errno));
			goto cleanup;
		}
		if (!skb)
			continue;
		/* Both programs on the cgroup; links[] holds each one attached. */
		fd = open(argv[i], O_RDONLY | O_DIRECTORY);
		if (fd < 0) {
			fprintf(stderr, "floor: %s: %s\n", argv[i], strerror(errno));
			goto cleanup;
		}
		links[nlinks] = bpf_program__attach_cgroup(skel->progs.skb_in, fd);
		if (links[nlinks])
			links[++nlinks] = bpf_program__attach_cgroup(skel->progs.skb_out, fd);
		e = errno;
		close(fd);
		if (!links[nlinks]) {
			fprintf(stderr, "floor: attaching to %s: %s\n", argv[i], strerror(e));
			goto cleanup;
		}
		nlinks++;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	printf("floor: watching %d cgroups\n", argc);
	fflush(stdout);
	while (!stop)
		pause();
	for (i = 0; i < argc; i++) {
		if (stat(argv[i], &st))
			continue;
		id = st.st_ino;
		if (!bpf_map_lookup_elem(bpf_map__fd(skel->maps.agg), &id, &a)) {
			sum += a.ns;
			answers += a.answers;
		}
	}
	printf("floor: %llu answers, %.1f us after their request on average\n",
	       (unsigned long long)answers, answers ? sum / 1e3 / answers : 0.0);
	err = 0;
cleanup:
	for (i = 0; i < nlinks; i++)
		bpf_link__destroy(links[i]);
	floor_bpf__destroy(skel);
	return err;
}

#define COST_BATCHES 5

/* Run time and runs of program @fd so far; 0 on success. */
static int prog_stats(int fd, __u64 *ns, __u64 *runs)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -1;
	*ns = info.run_time_ns;
	*runs = info.run_cnt;
	return 0;
}

/*
 * Nanoseconds per run of program @p over @calls getppid() calls: the least of COST_BATCHES
 * batches, so that a run the scheduler preempted (its time counts) does not move the figure.
 */
static double cost_per_run(struct bpf_program *p, long calls)
{
	__u64 ns0, n0, ns1, n1;
	double best = -1, v;
	long i;
	int b;

	for (b = 0; b < COST_BATCHES; b++) {
		if (prog_stats(bpf_program__fd(p), &ns0, &n0))
			return -1;
		for (i = 0; i < calls / COST_BATCHES; i++)
			syscall(SYS_getppid);
		if (prog_stats(bpf_program__fd(p), &ns1, &n1) || n1 == n0)
			return -1;
		v = (double)(ns1 - ns0) / (n1 - n0);
		if (best < 0 || v < best)
			best = v;
	}
	return best;
}

static int do_costs(long calls)
{
	static char buf[4096];
	struct bpf_program *p;
	struct bpf_link *link;
	struct floor_bpf *skel;
	double base = 0, ns;
	int stats_fd = -1, err = 1;

	skel = floor_bpf__open();
	if (!skel) {
		fprintf(stderr, "floor: open: %s\n", strerror(errno));
		return 1;
	}
	only(skel, "cost_");
	skel->rodata->cost_tgid = getpid();
	if (floor_bpf__load(skel)) {
		fprintf(stderr, "floor: cannot load the cost programs\n");
		goto cleanup;
	}
	memset(buf, 1, sizeof(buf));
	skel->bss->cost_ubuf = (unsigned long)buf;
	stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (stats_fd < 0) {
		fprintf(stderr, "floor: kernel.bpf_stats: %s\n", strerror(errno));
		goto cleanup;
	}
	/* cost_none comes first: every other program's time is the gate's plus its COST_OPS
	 * calls. */
	bpf_object__for_each_program (p, skel->obj) {
		if (!bpf_program__autoload(p))
			continue;
		link = bpf_program__attach(p);
		if (!link) {
			fprintf(stderr, "floor: attach %s: %s\n", bpf_program__name(p),
				strerror(errno));
			goto cleanup;
		}
		ns = cost_per_run(p, calls);
		bpf_link__destroy(link);
		if (ns < 0) {
			fprintf(stderr, "floor: %s did not run\n", bpf_program__name(p));
			goto cleanup;
		}
		if (!strcmp(bpf_program__name(p), "cost_none"))
			base = ns;
		else
			printf("%s\t%.1f\n", bpf_program__name(p) + 5, (ns - base) / COST_OPS);
	}
	err = 0;
cleanup:
	if (stats_fd >= 0)
		close(stats_fd);
	floor_bpf__destroy(skel);
	return err;
}

int main(int argc, char **argv)
{
	libbpf_set_print(silent);
	if (argc >= 3 && !strcmp(argv[1], "watch"))
		return do_watch(argc - 2, argv + 2, 0);
	if (argc >= 3 && !strcmp(argv[1], "skb"))
		return do_watch(argc - 2, argv + 2, 1);
	if (argc >= 2 && !strcmp(argv[1], "costs"))
		return do_costs(argc >= 3 ? atol(argv[2]) : 200000);
	fprintf(stderr,
		"usage: floor watch CGROUP_DIR... | floor skb CGROUP_DIR... | floor costs [CALLS]\n");
	return 1;
}
