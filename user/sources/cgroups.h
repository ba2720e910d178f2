/* SPDX-License-Identifier: GPL-2.0 */
/* Cgroup v2 discovery: which cgroups to watch, and with which label set, kept in a BPF map. */
#ifndef TAPIR_CGROUPS_H
#define TAPIR_CGROUPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"

struct tapir_cgroups;

/* A watched cgroup. The replica is the top-most cgroup of its path that a rule's glob matches
 * itself (its descendants are watched through it): a container, or a pod with containers. */
struct tapir_watched {
	uint64_t id;
	uint32_t labels_id;
	uint32_t seen;	     /* scan generation that last saw it */
	uint64_t replica_id; /* id of the replica cgroup (its own id for a replica) */
	char *rel;	     /* path relative to the v2 mount, starting with '/' */
	uint32_t rule;	     /* index of the rule that matched */
	uint32_t pending;    /* labels wait for a first process (env) or for its pod (kubelet) */
};

/* Find the cgroup v2 mount (pure v2 at /sys/fs/cgroup, or hybrid at .../unified). */
int tapir_cgroup2_mount(char *buf, size_t len);

/* A container's or cgroup's name, for model_name's default and the replica label: "vllm" for
 * /system.slice/vllm.service, a container's short id, else the directory name; "host" for the
 * root cgroup. */
void tapir_cgroup_name(const char *rel, char *buf, size_t len);

/* The 64-bit id the kernel uses for the cgroup v2 directory @path (bpf_get_current_cgroup_id). */
int tapir_cgroup_id(const char *path, uint64_t *id);
/* The same for an open directory. */
int tapir_cgroup_id_fd(int fd, uint64_t *id);

/*
 * Call @visit for @root and each directory below it on the same mount, parents first (the
 * path given is @root, then "/" and the names on the way; @fd is the open directory, valid
 * during the call). A directory removed during the
 * walk is skipped. Returns 0 when the walk saw the whole tree, else the first -errno that
 * left a part of it unseen (the walk still visits every other part).
 */
int tapir_cgroup_walk(const char *root, void (*visit)(void *ctx, const char *path, int fd),
		      void *ctx);

/* Does @rel (a path relative to the v2 mount, starting with '/') or one of its ancestors
 * match @glob? Returns 1 or 0. */
int tapir_cgroup_matches(const char *glob, const char *rel);

struct tapir_cgroups *tapir_cgroups__new(const struct tapir_config *cfg, int watched_fd);
void tapir_cgroups__free(struct tapir_cgroups *cg);

/* Walk the v2 tree and bring the watched map in line with it. Returns the number of watched
 * cgroups or -errno. */
int tapir_cgroups__scan(struct tapir_cgroups *cg);

const char *tapir_cgroups__root(const struct tapir_cgroups *cg);
/* All watched cgroups, sorted by id; valid until the next scan. */
const struct tapir_watched *tapir_cgroups__watched(const struct tapir_cgroups *cg, size_t *n);
const struct tapir_watched *tapir_cgroups__find(const struct tapir_cgroups *cg, uint64_t id);
size_t tapir_cgroups__n_watched(const struct tapir_cgroups *cg);
/*
 * The watched cgroups no watched ancestor covers (the root alone when it is watched): where a
 * program that sees every descendant's sockets hangs once. *@out (freed by the caller) gets
 * them sorted by path; returns how many, or -ENOMEM.
 */
ssize_t tapir_cgroups__tops(const struct tapir_cgroups *cg, const struct tapir_watched ***out);
/* The same for any @n cgroups @w (their id and rel). */
ssize_t tapir_watched_tops(const struct tapir_watched *w, size_t n,
			   const struct tapir_watched ***out);

/*
 * Label sets are interned: every distinct tuple of label values gets an id. A cgroup's labels
 * are its rule's static labels, overridden by the rule's `env` variables as found in the
 * environment of the cgroup's first process.
 */
/* Label values (TAPIR_L_COUNT strings) of label set @id, NULL if unknown. */
const char *const *tapir_cgroups__labels(const struct tapir_cgroups *cg, uint32_t id);
size_t tapir_cgroups__n_labelsets(const struct tapir_cgroups *cg);
/*
 * Label set @id answered a request. Without rules every cgroup is watched, and only label sets
 * that served HTTP are shown, in every family: this is the one record of which did.
 */
void tapir_cgroups__mark_served(struct tapir_cgroups *cg, uint32_t id);
bool tapir_cgroups__served(const struct tapir_cgroups *cg, uint32_t id);
/*
 * Forget the label sets no watched cgroup has carried for @grace_ms: @fn is called with each
 * (to drop its series) before its id is freed for reuse. Returns how many were forgotten.
 */
typedef void (*tapir_forget_fn)(void *ctx, uint32_t id, const char *const *labels);
size_t tapir_cgroups__expire(struct tapir_cgroups *cg, uint64_t grace_ms, tapir_forget_fn fn,
			     void *ctx);
struct tapir_podmeta;
/* Use pod metadata for cgroups whose path names a pod (precedence over env and static). */
void tapir_cgroups__set_kube(struct tapir_cgroups *cg, struct tapir_podmeta *kube);
/* Resolve again every cgroup whose labels are pending (e.g. after a kubelet fetch). */
void tapir_cgroups__relabel_pending(struct tapir_cgroups *cg);
/* Resolve again the labels of cgroup @id if they still wait for a process (its first exec). */
void tapir_cgroups__relabel(struct tapir_cgroups *cg, uint64_t id);
/* Process @pid of cgroup @id exec'd: labels from the environment are read again from it. */
void tapir_cgroups__exec(struct tapir_cgroups *cg, uint64_t id, int pid);
/* The value of @name in /proc/@pid/environ into @buf; 0, -ENOENT or -errno. Exposed for tests. */
int tapir_proc_env(int pid, const char *name, char *buf, size_t len);

#endif
