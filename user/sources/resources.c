// SPDX-License-Identifier: GPL-2.0
/* Container CPU and working set, read at scrape time the way cAdvisor and the kubelet do. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "procfs.h"
#include "resources.h"

static char v1_memory[1024], v1_cpuacct[1024];

/* v1 hierarchies, by their super options: "rw,memory" or "rw,cpu,cpuacct". */
static int v1_at(void *ctx, const struct tapir_mount *m)
{
	char opts[1024];

	if (strcmp(m->fstype, "cgroup"))
		return 0;
	snprintf(opts, sizeof(opts), "%s", m->super);
	for (char *sp, *tok = strtok_r(opts, ",", &sp); tok; tok = strtok_r(NULL, ",", &sp)) {
		if (!strcmp(tok, "memory") && !v1_memory[0])
			snprintf(v1_memory, sizeof(v1_memory), "%s", m->dir);
		if (!strcmp(tok, "cpuacct") && !v1_cpuacct[0])
			snprintf(v1_cpuacct, sizeof(v1_cpuacct), "%s", m->dir);
	}
	return 0;
}

void tapir_resources_init(void)
{
	tapir_proc_mounts(v1_at, NULL);
	if (v1_memory[0] || v1_cpuacct[0])
		pr_info("hybrid cgroups: v1 memory at %s, cpuacct at %s",
			v1_memory[0] ? v1_memory : "-", v1_cpuacct[0] ? v1_cpuacct : "-");
}

/*
 * The start of a small cgroupfs or procfs file, NUL-terminated, in @buf; its length or -errno.
 * open, read and close, nothing more: a scrape may read hundreds of these, and stdio's
 * buffer allocation and fstat would double the system calls.
 */
static ssize_t read_text(const char *path, char *buf, size_t len)
{
	ssize_t n = 0, got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	while ((size_t)got < len - 1 && (n = read(fd, buf + got, len - 1 - got)) > 0)
		got += n;
	if (n < 0 && !got)
		got = -errno;
	close(fd);
	if (got >= 0)
		buf[got] = '\0';
	return got;
}

/* The decimal number at @s (after blanks), as fscanf's %llu reads it; -EINVAL if none. */
static int parse_u64(const char *s, uint64_t *v)
{
	unsigned long long x;
	char *end;

	errno = 0;
	x = strtoull(s, &end, 10);
	if (end == s || errno)
		return -EINVAL;
	*v = x;
	return 0;
}

static int read_u64(const char *path, uint64_t *v)
{
	char buf[64];
	ssize_t n = read_text(path, buf, sizeof(buf));

	return n < 0 ? (int)n : parse_u64(buf, v);
}

/* "key value" lines, as in cpu.stat and memory.stat. */
static int read_key(const char *path, const char *key, uint64_t *v)
{
	size_t klen = strlen(key);
	char buf[16384], *p;
	ssize_t n = read_text(path, buf, sizeof(buf));

	if (n < 0)
		return (int)n;
	for (p = buf; *p; p += strcspn(p, "\n"), p += *p == '\n') {
		if (!strncmp(p, key, klen) && p[klen] == ' ')
			return parse_u64(p + klen + 1, v);
	}
	return -ENOENT;
}

/*
 * The cgroup of @pid from /proc/PID/cgroup: in the v1 hierarchy that has controller @ctrl, or
 * in v2 ("0::" line) when @ctrl is NULL.
 */
static int pid_cgroup(int pid, const char *ctrl, char *buf, size_t len)
{
	char path[64], text[16384], *line, *lp;
	int err = -ENOENT;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
	n = read_text(path, text, sizeof(text));
	if (n < 0)
		return (int)n;
	for (line = strtok_r(text, "\n", &lp); err && line; line = strtok_r(NULL, "\n", &lp)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

		if (!c2)
			continue;
		*c2 = '\0';
		if (!ctrl) {
			if (c1 == line + 1 && line[0] == '0' && c2 == c1 + 1) {
				snprintf(buf, len, "%s", c2 + 1);
				err = 0;
			}
			continue;
		}
		for (char *sp, *tok = strtok_r(c1 + 1, ",", &sp); tok;
		     tok = strtok_r(NULL, ",", &sp))
			if (!strcmp(tok, ctrl)) {
				snprintf(buf, len, "%s", c2 + 1);
				err = 0;
			}
	}
	return err;
}

int tapir_pid_cgroup2(int pid, char *buf, size_t len)
{
	return pid_cgroup(pid, NULL, buf, len);
}

int tapir_cgroup_first_pid(const char *dir)
{
	char path[4096], buf[32];
	struct dirent *de;
	int pid = 0;
	uint64_t v;
	DIR *d;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	if (read_text(path, buf, sizeof(buf)) > 0 && !parse_u64(buf, &v) && v && v <= INT_MAX)
		return (int)v;
	d = opendir(dir);
	if (!d)
		return 0;
	while (!pid && (de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		pid = tapir_cgroup_first_pid(path);
	}
	closedir(d);
	return pid;
}

bool tapir_cgroup_is_sandbox(const char *dir)
{
	char path[64], comm[32] = "";
	int pid = tapir_cgroup_first_pid(dir);
	FILE *f;

	if (!pid)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	if (!fgets(comm, sizeof(comm), f))
		comm[0] = '\0';
	fclose(f);
	comm[strcspn(comm, "\n")] = '\0';
	return !strcmp(comm, "pause");
}

int tapir_usage_read(const char *dir, int pid, struct tapir_usage *u)
{
	char path[8192], cg1[4096];
	uint64_t v, inactive;

	memset(u, 0, sizeof(*u));
	/* CPU: cgroup v2 cpu.stat usage_usec is there without the cpu controller too. */
	snprintf(path, sizeof(path), "%s/cpu.stat", dir);
	if (!read_key(path, "usage_usec", &v)) {
		u->has_cpu = true;
		u->cpu_seconds = v / 1e6;
	} else if (pid && v1_cpuacct[0] && !pid_cgroup(pid, "cpuacct", cg1, sizeof(cg1)) &&
		   strcmp(cg1, "/")) {
		if (snprintf(path, sizeof(path), "%s%s/cpuacct.usage", v1_cpuacct, cg1) <
			    (int)sizeof(path) &&
		    !read_u64(path, &v)) {
			u->has_cpu = true;
			u->cpu_seconds = v / 1e9;
		}
	}
	/* Memory working set = usage - inactive_file, clamped at 0 (cAdvisor's definition). */
	snprintf(path, sizeof(path), "%s/memory.current", dir);
	if (!read_u64(path, &v)) {
		snprintf(path, sizeof(path), "%s/memory.stat", dir);
		if (read_key(path, "inactive_file", &inactive))
			inactive = 0;
		u->has_mem = true;
		u->working_set = v > inactive ? (double)(v - inactive) : 0;
	} else if (pid && v1_memory[0] && !pid_cgroup(pid, "memory", cg1, sizeof(cg1)) &&
		   strcmp(cg1, "/")) {
		/* (A process in the v1 root would report the whole host: say nothing.) */
		if (snprintf(path, sizeof(path), "%s%s/memory.usage_in_bytes", v1_memory, cg1) <
			    (int)sizeof(path) &&
		    !read_u64(path, &v)) {
			if (snprintf(path, sizeof(path), "%s%s/memory.stat", v1_memory, cg1) >=
				    (int)sizeof(path) ||
			    read_key(path, "total_inactive_file", &inactive))
				inactive = 0;
			u->has_mem = true;
			u->working_set = v > inactive ? (double)(v - inactive) : 0;
		}
	}
	return u->has_cpu || u->has_mem ? 0 : -ENOENT;
}
