// SPDX-License-Identifier: GPL-2.0
/* Cgroup v2 discovery: walk the hierarchy, match rules, keep the BPF watched_cgroups map true. */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "tapir/http.h"
#include "cgroups.h"
#include "grow.h"
#include "procfs.h"
#include "identity.h"
#include "podmeta.h"
#include "log.h"
#include "resources.h"

#define watched		    tapir_watched
#define TAPIR_MAX_ENV_LABEL 4096 /* longer values are cut; the exposition cuts at 1 KiB */

struct labelset {
	char *v[TAPIR_L_COUNT];
	uint32_t refs;	  /* watched cgroups carrying it */
	bool used;	  /* false: a free slot for the next new set */
	bool served;	  /* a request was answered under it (set by the daemon) */
	uint64_t dead_ms; /* when refs fell to 0 */
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

struct tapir_cgroups {
	const struct tapir_config *cfg;
	int watched_fd;
	char root[512];
	size_t root_len;
	struct watched *w; /* sorted by id */
	size_t n, cap;
	uint32_t gen;
	struct tapir_podmeta *kube; /* NULL: no pod metadata */
	struct labelset *sets;	    /* interned label sets, by labels_id */
	size_t n_sets, cap_sets;
};

struct mount_buf {
	char *buf;
	size_t len;
};

static int cgroup2_at(void *ctx, const struct tapir_mount *m)
{
	struct mount_buf *b = ctx;

	if (strcmp(m->fstype, "cgroup2"))
		return 0;
	return (size_t)snprintf(b->buf, b->len, "%s", m->dir) >= b->len ? -ENAMETOOLONG : 1;
}

int tapir_cgroup2_mount(char *buf, size_t len)
{
	struct mount_buf b = { buf, len };
	int ret = tapir_proc_mounts(cgroup2_at, &b);

	return ret == 1 ? 0 : ret < 0 ? ret : -ENOENT;
}

/* The id of @path under @dirfd (@flags: AT_EMPTY_PATH for @dirfd itself): its file handle, or on
 * kernels without handle support for kernfs the inode number, which is the id on 64-bit. */
static int cgroup_id_at(int dirfd, const char *path, int flags, uint64_t *id)
{
	struct {
		struct file_handle fh;
		uint64_t id;
	} h;
	struct stat st;
	int mount_id;

	h.fh.handle_bytes = sizeof(h.id);
	if (name_to_handle_at(dirfd, path, &h.fh, &mount_id, flags) == 0 &&
	    h.fh.handle_bytes == sizeof(uint64_t)) {
		memcpy(id, h.fh.f_handle, sizeof(*id));
		return 0;
	}
	if (fstatat(dirfd, path, &st, flags))
		return -errno;
	*id = st.st_ino;
	return 0;
}

int tapir_cgroup_id(const char *path, uint64_t *id)
{
	return cgroup_id_at(AT_FDCWD, path, 0, id);
}

int tapir_cgroup_id_fd(int fd, uint64_t *id)
{
	return cgroup_id_at(fd, "", AT_EMPTY_PATH, id);
}

int tapir_cgroup_matches(const char *glob, const char *rel)
{
	char path[4096];
	char *slash;

	if (snprintf(path, sizeof(path), "%s", rel) >= (int)sizeof(path))
		return 0;
	for (;;) {
		if (fnmatch(glob, path, FNM_PATHNAME) == 0)
			return 1;
		slash = strrchr(path, '/');
		if (!slash || slash == path)
			return fnmatch(glob, "/", FNM_PATHNAME) == 0;
		*slash = '\0';
	}
}

struct tapir_cgroups *tapir_cgroups__new(const struct tapir_config *cfg, int watched_fd)
{
	struct tapir_cgroups *cg = calloc(1, sizeof(*cg));
	int err;

	if (!cg)
		return NULL;
	cg->cfg = cfg;
	cg->watched_fd = watched_fd;
	err = tapir_cgroup2_mount(cg->root, sizeof(cg->root));
	if (err) {
		pr_err("no cgroup v2 hierarchy is mounted (%s); tapir needs one", strerror(-err));
		free(cg);
		errno = -err;
		return NULL;
	}
	cg->root_len = strlen(cg->root);
	while (cg->root_len > 1 && cg->root[cg->root_len - 1] == '/')
		cg->root[--cg->root_len] = '\0';
	pr_info("cgroup v2 hierarchy at %s", cg->root);
	return cg;
}

void tapir_cgroups__free(struct tapir_cgroups *cg)
{
	size_t i;

	if (!cg)
		return;
	for (i = 0; i < cg->n; i++)
		free(cg->w[i].rel);
	for (i = 0; i < cg->n_sets; i++)
		for (int j = 0; j < TAPIR_L_COUNT && cg->sets[i].used; j++)
			free(cg->sets[i].v[j]);
	free(cg->sets);
	free(cg->w);
	free(cg);
}

/* The id of label set @v, added if new (in a free slot if any); -ENOMEM. Not referenced. */
static int intern(struct tapir_cgroups *cg, const char *const *v)
{
	struct labelset *set;
	size_t i, j, slot = cg->n_sets;

	for (i = 0; i < cg->n_sets; i++) {
		if (!cg->sets[i].used) {
			if (slot == cg->n_sets)
				slot = i;
			continue;
		}
		for (j = 0; j < TAPIR_L_COUNT; j++)
			if (strcmp(cg->sets[i].v[j], v[j]))
				break;
		if (j == TAPIR_L_COUNT)
			return (int)i;
	}
	if (slot == cg->n_sets) {
		if (cg->n_sets == cg->cap_sets) {
			size_t cap = cg->cap_sets ? 2 * cg->cap_sets : 16;
			struct labelset *ns = realloc(cg->sets, cap * sizeof(*ns));

			if (!ns)
				return -ENOMEM;
			cg->sets = ns;
			cg->cap_sets = cap;
		}
		cg->n_sets++;
	}
	set = &cg->sets[slot];
	memset(set, 0, sizeof(*set));
	for (j = 0; j < TAPIR_L_COUNT; j++) {
		set->v[j] = strdup(v[j]);
		if (!set->v[j]) {
			while (j--)
				free(set->v[j]);
			return -ENOMEM;
		}
	}
	set->used = true;
	set->dead_ms = mono_ms();
	return (int)slot;
}

static void ref(struct tapir_cgroups *cg, uint32_t id)
{
	cg->sets[id].refs++;
}

static void unref(struct tapir_cgroups *cg, uint32_t id)
{
	if (--cg->sets[id].refs == 0)
		cg->sets[id].dead_ms = mono_ms();
}

size_t tapir_cgroups__expire(struct tapir_cgroups *cg, uint64_t grace_ms, tapir_forget_fn fn,
			     void *ctx)
{
	uint64_t now = mono_ms();
	size_t i, j, n = 0;

	for (i = 0; i < cg->n_sets; i++) {
		struct labelset *set = &cg->sets[i];

		if (!set->used || set->refs || now - set->dead_ms < grace_ms)
			continue;
		fn(ctx, i, (const char *const *)set->v);
		for (j = 0; j < TAPIR_L_COUNT; j++)
			free(set->v[j]);
		set->used = false;
		n++;
	}
	return n;
}

int tapir_proc_env(int pid, const char *name, char *buf, size_t len)
{
	size_t nlen = strlen(name), n = 0;
	char path[64], *env = NULL, *p;
	ssize_t got;
	int fd, err = -ENOENT;

	snprintf(path, sizeof(path), "/proc/%d/environ", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	env = malloc(1 << 20); /* the kernel caps an environment well below this */
	if (!env) {
		close(fd);
		return -ENOMEM;
	}
	while (n < (1 << 20) - 1 && (got = read(fd, env + n, (1 << 20) - 1 - n)) > 0)
		n += got;
	close(fd);
	env[n] = '\0';
	for (p = env; p < env + n; p += strlen(p) + 1) {
		if (strncmp(p, name, nlen) || p[nlen] != '=')
			continue;
		snprintf(buf, len, "%s", p + nlen + 1);
		err = 0;
		break;
	}
	free(env);
	return err;
}

/* Labels of a cgroup matched by rule @r: static ones, overridden by the environment. */
/* With no rules at all, every cgroup is watched as its own replica under this rule. */
#define RULE_DEFAULT UINT32_MAX
static char empty[] = "";
static const struct tapir_rule default_rule = {
	.cgroup = empty,
	.labels = { empty, empty, empty, empty, empty },
};

void tapir_cgroup_name(const char *rel, char *buf, size_t len)
{
	struct tapir_identity id;
	const char *slash = strrchr(rel, '/');

	if (!strcmp(rel, "/"))
		snprintf(buf, len, "host");
	else if (tapir_identity_parse(rel, &id) == 0 && id.name[0])
		snprintf(buf, len, "%s", id.name);
	else
		snprintf(buf, len, "%s", slash && slash[1] ? slash + 1 : rel);
}

static int resolve(struct tapir_cgroups *cg, uint32_t r, const char *rel, int pid,
		   uint32_t *pending)
{
	const struct tapir_rule *rule = r == RULE_DEFAULT ? &default_rule : &cg->cfg->rules[r];
	struct tapir_identity ident;
	char fallback[128];
	char vals[TAPIR_L_COUNT][TAPIR_MAX_ENV_LABEL];
	const char *v[TAPIR_L_COUNT];
	char dir[4608];
	int i;

	*pending = 0;
	for (i = 0; i < TAPIR_L_COUNT; i++)
		v[i] = rule->labels[i];
	for (i = 0; i < TAPIR_L_COUNT; i++) {
		if (!rule->env[i])
			continue;
		if (!pid) {
			snprintf(dir, sizeof(dir), "%s%s", cg->root, rel);
			pid = tapir_cgroup_first_pid(dir);
			if (!pid) {
				*pending =
					1; /* no process yet: static labels until its first exec */
				break;
			}
		}
		if (tapir_proc_env(pid, rule->env[i], vals[i], sizeof(vals[i])) == 0)
			v[i] = vals[i];
	}
	/* Pod metadata wins over the environment and the rule. */
	if (cg->kube && tapir_identity_parse(rel, &ident) == 0 && ident.pod_uid[0]) {
		static char kvals[TAPIR_L_COUNT][TAPIR_KUBE_VALUE_MAX];
		bool set[TAPIR_L_COUNT];

		if (tapir_podmeta__labels(cg->kube, ident.pod_uid, kvals, set)) {
			for (i = 0; i < TAPIR_L_COUNT; i++)
				if (set[i])
					v[i] = kvals[i];
		} else {
			*pending = 1; /* a pod the last fetch did not have: fetch again */
			tapir_podmeta__wake(cg->kube);
		}
	}
	/* No model name from the rule or the environment: the container's own name. */
	if (!v[TAPIR_L_MODEL_NAME][0]) {
		tapir_cgroup_name(rel, fallback, sizeof(fallback));
		v[TAPIR_L_MODEL_NAME] = fallback;
	}
	return intern(cg, v);
}

static struct watched *find(const struct tapir_cgroups *cg, uint64_t id, size_t *pos)
{
	size_t i = tapir_id_index(cg->w, cg->n, sizeof(*cg->w), id);

	*pos = i;
	return i < cg->n && cg->w[i].id == id ? &cg->w[i] : NULL;
}

/* What the kernel side needs to know of rule @r (struct tapir_cgroup_info.flags). */
static __u32 cgi_flags(const struct tapir_cgroups *cg, uint32_t r)
{
	const struct tapir_rule *rule = r != RULE_DEFAULT ? &cg->cfg->rules[r] : NULL;

	return (rule && rule->no_llm ? TAPIR_CGI_NO_LLM : 0) |
	       (rule && tapir_rule__wants_heads(rule) ? TAPIR_CGI_HEADS : 0);
}

static int add(struct tapir_cgroups *cg, uint64_t id, uint32_t rule, uint64_t replica_id,
	       const char *rel)
{
	struct tapir_cgroup_info info = { 0 };
	struct watched *w;
	uint32_t pending;
	char *copy;
	size_t pos;
	int labels_id;

	w = find(cg, id, &pos);
	if (w) {
		w->seen = cg->gen;
		if (w->pending)
			tapir_cgroups__relabel(cg, id);
		return 0;
	}
	if (cg->n == cg->cap) {
		size_t cap = cg->cap ? cg->cap * 2 : 64;
		struct watched *nw = realloc(cg->w, cap * sizeof(*nw));

		if (!nw)
			return -ENOMEM;
		cg->w = nw;
		cg->cap = cap;
	}
	labels_id = resolve(cg, rule, rel, 0, &pending);
	if (labels_id < 0)
		return labels_id;
	ref(cg, labels_id);
	info.labels_id = labels_id;
	info.flags = cgi_flags(cg, rule);
	copy = strdup(rel);
	if (!copy) {
		unref(cg, labels_id);
		return -ENOMEM;
	}
	if (bpf_map_update_elem(cg->watched_fd, &id, &info, BPF_ANY)) {
		int err = -errno;

		pr_warn("cannot watch cgroup %s: %s", rel, strerror(errno));
		free(copy);
		unref(cg, labels_id);
		return err;
	}
	memmove(&cg->w[pos + 1], &cg->w[pos], (cg->n - pos) * sizeof(*cg->w));
	cg->w[pos] = (struct watched){ .id = id,
				       .labels_id = labels_id,
				       .seen = cg->gen,
				       .replica_id = replica_id,
				       .rel = copy,
				       .rule = rule,
				       .pending = pending };
	cg->n++;
	pr_debug("watching cgroup %s (id %llu) as %s", rel, (unsigned long long)id,
		 cg->sets[labels_id].v[TAPIR_L_MODEL_NAME]);
	return 0;
}

/* The shortest ancestor-or-self of @rel that @glob matches by itself: the replica. */
static int replica_of(struct tapir_cgroups *cg, const char *glob, const char *rel, uint64_t self,
		      uint64_t *id)
{
	char path[4096];
	size_t i, len = strlen(rel);

	for (i = 1; i <= len; i++) {
		if (i < len && rel[i] != '/')
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%.*s", (int)i, rel) >= sizeof(path))
			return -ENAMETOOLONG;
		if (fnmatch(glob, path, FNM_PATHNAME) == 0) {
			char abs[4608];

			if (i == len) { /* the cgroup itself: its id is known */
				*id = self;
				return 0;
			}
			snprintf(abs, sizeof(abs), "%s%s", cg->root, path);
			return tapir_cgroup_id(abs, id);
		}
	}
	return -ENOENT;
}

/* Walk state: one path buffer, extended and cut back as the walk goes down and up. */
struct walk {
	char path[4096];
	dev_t dev;
	void (*visit)(void *ctx, const char *path, int fd);
	void *ctx;
	int err; /* the first error that left a part of the tree unseen */
};

#define WALK_MAX_DEPTH 128

static void walk_note(struct walk *w, int err)
{
	if (!w->err)
		w->err = err;
}

/* Visit the subdirectories of open directory @fd (whose path is w->path, @len bytes). */
static void walk_dir(struct walk *w, int fd, size_t len, int depth)
{
	struct dirent *de;
	struct stat st;
	DIR *d;

	d = fdopendir(fd);
	if (!d) {
		walk_note(w, -errno);
		close(fd);
		return;
	}
	for (;;) {
		size_t n;
		int sub;

		errno = 0;
		de = readdir(d);
		if (!de) {
			/* A directory removed while it is read simply ends. */
			if (errno && errno != ENOENT)
				walk_note(w, -errno);
			break;
		}
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0) {
			/* Removed since the listing (or not a directory): nothing to see there. */
			if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP)
				walk_note(w, -errno);
			continue;
		}
		if (fstat(sub, &st) || st.st_dev != w->dev) {
			close(sub); /* another mount below this one: not part of this tree */
			continue;
		}
		n = strlen(de->d_name);
		if (len + 1 + n >= sizeof(w->path) || depth >= WALK_MAX_DEPTH) {
			walk_note(w, -ENAMETOOLONG);
			close(sub);
			continue;
		}
		w->path[len] = '/';
		memcpy(w->path + len + 1, de->d_name, n + 1);
		w->visit(w->ctx, w->path, sub);
		walk_dir(w, sub, len + 1 + n, depth + 1);
		w->path[len] = '\0';
	}
	closedir(d);
}

int tapir_cgroup_walk(const char *root, void (*visit)(void *ctx, const char *path, int fd),
		      void *ctx)
{
	struct walk *w;
	struct stat st;
	size_t len;
	int fd, err;

	len = strlen(root);
	while (len > 1 && root[len - 1] == '/')
		len--;
	if (len >= sizeof(w->path))
		return -ENAMETOOLONG;
	fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	w = calloc(1, sizeof(*w));
	if (!w || fstat(fd, &st)) {
		err = w ? -errno : -ENOMEM;
		free(w);
		close(fd);
		return err;
	}
	w->dev = st.st_dev;
	w->visit = visit;
	w->ctx = ctx;
	visit(ctx, root, fd);
	if (len == 1 && root[0] == '/')
		len = 0; /* children are "/x", not "//x" */
	memcpy(w->path, root, len);
	w->path[len] = '\0';
	walk_dir(w, fd, len, 0);
	err = w->err;
	free(w);
	return err;
}

static void visit(void *ctx, const char *path, int fd)
{
	struct tapir_cgroups *cg = ctx;
	const char *rel = path + cg->root_len;
	uint64_t id, replica;
	size_t i;

	if (!*rel)
		rel = "/";
	if (!cg->cfg->n_rules) {
		if (tapir_cgroup_id_fd(fd, &id) == 0)
			add(cg, id, RULE_DEFAULT, id, rel);
		return;
	}
	for (i = 0; i < cg->cfg->n_rules; i++) {
		if (!tapir_cgroup_matches(cg->cfg->rules[i].cgroup, rel))
			continue;
		if (tapir_cgroup_id_fd(fd, &id) == 0 &&
		    replica_of(cg, cg->cfg->rules[i].cgroup, rel, id, &replica) == 0)
			add(cg, id, i, replica, rel);
		break;
	}
}

int tapir_cgroups__scan(struct tapir_cgroups *cg)
{
	size_t i, j;
	int err;

	cg->gen++;
	/* Cgroups come and go during the walk: one removed under it is skipped. A walk that
	 * could not see the whole tree forgets nothing, so a cgroup it missed keeps its
	 * requests (a wrong "gone" would drop them without a trace). */
	err = tapir_cgroup_walk(cg->root, visit, cg);
	if (err) {
		pr_warn("walking %s: %s; forgetting no cgroup until a walk completes", cg->root,
			strerror(-err));
		return (int)cg->n;
	}
	for (i = j = 0; i < cg->n; i++) {
		if (cg->w[i].seen == cg->gen) {
			cg->w[j++] = cg->w[i];
			continue;
		}
		bpf_map_delete_elem(cg->watched_fd, &cg->w[i].id);
		pr_debug("cgroup %s is gone", cg->w[i].rel);
		unref(cg, cg->w[i].labels_id);
		free(cg->w[i].rel);
	}
	cg->n = j;
	return (int)cg->n;
}

const char *tapir_cgroups__root(const struct tapir_cgroups *cg)
{
	return cg->root;
}

const struct tapir_watched *tapir_cgroups__watched(const struct tapir_cgroups *cg, size_t *n)
{
	*n = cg->n;
	return cg->w;
}

const struct tapir_watched *tapir_cgroups__find(const struct tapir_cgroups *cg, uint64_t id)
{
	size_t pos;

	return find(cg, id, &pos);
}

size_t tapir_cgroups__n_watched(const struct tapir_cgroups *cg)
{
	return cg->n;
}

/* @x against the path @rel[0..@len) (both relative to the mount): strcmp's order. */
static int rel_cmp(const char *x, const char *rel, size_t len)
{
	int r = strncmp(x, rel, len);

	return r ? r : x[len] ? 1 : 0;
}

static int by_rel(const void *a, const void *b)
{
	return strcmp((*(const struct watched *const *)a)->rel,
		      (*(const struct watched *const *)b)->rel);
}

/* Is @rel[0..@len) one of @by (@n, sorted by path)? */
static bool rel_watched(const struct watched *const *by, size_t n, const char *rel, size_t len)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = rel_cmp(by[mid]->rel, rel, len);

		if (!r)
			return true;
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

ssize_t tapir_cgroups__tops(const struct tapir_cgroups *cg, const struct tapir_watched ***out)
{
	return tapir_watched_tops(cg->w, cg->n, out);
}

ssize_t tapir_watched_tops(const struct tapir_watched *w, size_t n_w,
			   const struct tapir_watched ***out)
{
	const struct watched **by = malloc((n_w ? n_w : 1) * sizeof(*by));
	const struct watched **tops = malloc((n_w ? n_w : 1) * sizeof(*tops));
	size_t i, k, n = 0, len;
	const char *rel;

	*out = NULL;
	if (!by || !tops) {
		free(by);
		free(tops);
		return -ENOMEM;
	}
	for (i = 0; i < n_w; i++)
		by[i] = &w[i];
	qsort(by, n_w, sizeof(*by), by_rel);
	for (i = 0; i < n_w; i++) {
		rel = by[i]->rel;
		len = strlen(rel);
		/* Its ancestors: "/" first, then each prefix ending before a '/'. */
		for (k = 1; k < len; k++)
			if ((k == 1 || rel[k] == '/') && rel_watched(by, n_w, rel, k))
				break;
		if (k >= len)
			tops[n++] = by[i];
	}
	free(by);
	*out = tops;
	return (ssize_t)n;
}

const char *const *tapir_cgroups__labels(const struct tapir_cgroups *cg, uint32_t id)
{
	if (id >= cg->n_sets || !cg->sets[id].used)
		return NULL;
	return (const char *const *)cg->sets[id].v;
}

size_t tapir_cgroups__n_labelsets(const struct tapir_cgroups *cg)
{
	return cg->n_sets;
}

void tapir_cgroups__set_kube(struct tapir_cgroups *cg, struct tapir_podmeta *kube)
{
	cg->kube = kube;
}

/* Resolve @w's labels again, reading the environment of @pid (0: the cgroup's first process). */
static void relabel(struct tapir_cgroups *cg, struct watched *w, int pid)
{
	struct tapir_cgroup_info info = { 0 };
	uint32_t pending;
	int labels_id;

	labels_id = resolve(cg, w->rule, w->rel, pid, &pending);
	if (labels_id < 0)
		return;
	w->pending = pending; /* what is known now is used; the rest may come later */
	if ((uint32_t)labels_id == w->labels_id)
		return;
	pr_debug("cgroup %s relabelled as %s", w->rel, cg->sets[labels_id].v[TAPIR_L_MODEL_NAME]);
	ref(cg, labels_id);
	unref(cg, w->labels_id);
	w->labels_id = labels_id;
	/* The daemon is the only writer of these values: keep what bpftool shows true. */
	info.labels_id = labels_id;
	info.flags = cgi_flags(cg, w->rule);
	if (bpf_map_update_elem(cg->watched_fd, &w->id, &info, BPF_EXIST))
		pr_debug("cgroup %s: cannot update its labels in the BPF map: %s", w->rel,
			 strerror(errno));
}

void tapir_cgroups__relabel_pending(struct tapir_cgroups *cg)
{
	size_t i;

	for (i = 0; i < cg->n; i++)
		if (cg->w[i].pending)
			relabel(cg, &cg->w[i], 0);
}

void tapir_cgroups__relabel(struct tapir_cgroups *cg, uint64_t id)
{
	size_t pos;
	struct watched *w = find(cg, id, &pos);

	if (w && w->pending)
		relabel(cg, w, 0);
}

void tapir_cgroups__exec(struct tapir_cgroups *cg, uint64_t id, int pid)
{
	const struct tapir_rule *rule;
	size_t pos;
	struct watched *w = find(cg, id, &pos);
	int i;

	if (!w)
		return;
	/* The program a container execs defines its environment: read it again from the
	 * process that exec'd, not from a process caught between fork and exec. */
	rule = w->rule == RULE_DEFAULT ? &default_rule : &cg->cfg->rules[w->rule];
	for (i = 0; i < TAPIR_L_COUNT; i++)
		if (rule->env[i])
			break;
	if (i < TAPIR_L_COUNT || w->pending)
		relabel(cg, w, pid);
}

void tapir_cgroups__mark_served(struct tapir_cgroups *cg, uint32_t id)
{
	if (id < cg->n_sets && cg->sets[id].used)
		cg->sets[id].served = true;
}

bool tapir_cgroups__served(const struct tapir_cgroups *cg, uint32_t id)
{
	return id < cg->n_sets && cg->sets[id].used && cg->sets[id].served;
}
