/* SPDX-License-Identifier: GPL-2.0 */
/* BPF lifecycle: probe the kernel, open, size, load and attach tapir's programs. */
#ifndef TAPIR_LOADER_H
#define TAPIR_LOADER_H

#define TAPIR_PIN_DIR "/sys/fs/bpf/tapir"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config.h"

struct tapir_loader;

/* One BPF program and whether it is running, for tapir_bpf_program_attached and tapir check. */
struct tapir_prog_status {
	char name[48];
	const char *feature; /* "http", "lifecycle" */
	const char *variant; /* "loop", "compat"; "" for features with one build */
	bool attached;
	const char *reason; /* short label value when not attached: no_hook, verifier, ... */
	const char *why;    /* the same in words, NULL when attached */
};

/* Called for each ring-buffer record; @data starts with a __u32 TAPIR_REC_* type. */
typedef int (*tapir_record_fn)(void *ctx, void *data, size_t size);

/*
 * Open, size and load every feature the kernel supports. A feature the kernel refuses is
 * logged with the verifier's last lines and reported through tapir__programs(); the others
 * run on. NULL with errno set only when BPF cannot work at all here (no kernel BTF, no ring
 * buffers). Mounts tracefs if needed.
 */
struct tapir_loader *tapir_loader__new(const struct tapir_config *cfg, tapir_record_fn fn,
				       void *ctx);
int tapir_loader__attach(struct tapir_loader *l);
struct tapir_watched;
/*
 * The socket-buffer hooks, when loaded, hang on @tops (tapir_cgroups__tops(); @mount is the
 * cgroup v2 mount their paths are under) and on no other cgroup: they see the sockets of every
 * watched cgroup, each segment once, and no other socket's. Call after each scan. Returns the
 * number of links that could not be made (in tapir_bpf_program_attached too), or -ENOMEM.
 */
int tapir_loader__cover(struct tapir_loader *l, const char *mount,
			const struct tapir_watched *const *tops, size_t n);
/* Whether the socket-buffer hooks are loaded (then tapir_loader__cover() has work). */
bool tapir_loader__skb_hooks(const struct tapir_loader *l);
/*
 * tapir check: load every program on this kernel, one at a time, without attaching, and print
 * a table (program, feature, variant, result) to @out. Returns 0 when every metric family
 * can work, 1 when some cannot, -errno when BPF cannot work at all.
 */
int tapir_loader_check(const struct tapir_config *cfg, FILE *out);
/*
 * Pin the maps an operator inspects (conns, watched_cgroups, stats, listeners, active_io) under
 * @dir, mounting bpffs if needed; a pin left by an earlier instance is replaced. Failure is
 * logged and returns -errno; the daemon runs on without pins.
 */
int tapir_loader__pin(struct tapir_loader *l, const char *dir);
/*
 * Claim the pin directory @dir (created, bpffs mounted if needed) for this daemon: an
 * exclusive flock on the directory, held until exit (the kernel drops it if the daemon dies).
 * Returns the lock's fd, -EBUSY when a running tapir owns it, or another -errno.
 */
int tapir_pin_dir_claim(const char *dir);
/* 1 when a running daemon owns @dir, 0 when none does (its pins are stale), -errno on error. */
int tapir_pin_dir_owned(const char *dir);
/* An fd that polls readable when records wait (for an epoll set of the caller's own), and the
 * drain to run then, or on a timer (most records are submitted without a wake-up). */
int tapir_loader__ring_fd(const struct tapir_loader *l);
int tapir_loader__consume(struct tapir_loader *l);
void tapir_loader__free(struct tapir_loader *l);

int tapir_loader__watched_fd(const struct tapir_loader *l);
/* The HTTP feature's maps; -1 when it did not load. */
int tapir_loader__conns_fd(const struct tapir_loader *l);
/* The prestart map (socket inode -> cgroup id), -1 when no HTTP variant loaded. */
int tapir_loader__prestart_fd(const struct tapir_loader *l);
int tapir_loader__stats_fd(const struct tapir_loader *l);
/* own_clients: local ports of tapir's own connections to watched servers; -1 without HTTP. */
int tapir_loader__own_clients_fd(const struct tapir_loader *l);
/* http_agg (include/tapir/agg.h); -1 when nothing is aggregated in the kernel. */
int tapir_loader__agg_fd(const struct tapir_loader *l);
/* The llm_events ring buffer's map (struct tapir_llm_chunk records); -1 when capture is off. */
int tapir_loader__llm_fd(const struct tapir_loader *l);
/* The h2_events ring (HTTP/2 frames, loop build only), -1 when not loaded. */
int tapir_loader__h2_fd(const struct tapir_loader *l);
/* Lost lifecycle events (their ring was full); 0 when the feature is off. */
unsigned long long tapir_loader__lifecycle_lost(const struct tapir_loader *l);
/* The listeners map (socket inode -> cgroup id), -1 without the lifecycle feature. */
int tapir_loader__listeners_fd(const struct tapir_loader *l);
size_t tapir_loader__programs(const struct tapir_loader *l, const struct tapir_prog_status **out);

/* Mount @fstype at @dir unless something is mounted there already. */
int tapir_ensure_mount(const char *fstype, const char *dir);

#endif
