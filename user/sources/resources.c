// SPDX-License-Identifier: GPL-2.0
/* Container CPU and working set, read at scrape time the way cAdvisor and the kubelet do. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int read_u64(const char *path, uint64_t *v)
{
	FILE *f = fopen(path, "re");
	unsigned long long x;
	int ok;

	if (!f)
		return -errno;
	ok = fscanf(f, "%llu", &x) == 1;
	fclose(f);
	if (!ok)
		return -EINVAL;
	*v = x;
	return 0;
}

/* "key value" lines, as in cpu.stat and memory.stat. */
static int read_key(const char *path, const char *key, uint64_t *v)
{
	char k[64];
	unsigned long long x;
	FILE *f = fopen(path, "re");
	int err = -ENOENT;

	if (!f)
		return -errno;
	while (fscanf(f, "%63s %llu", k, &x) == 2) {
		if (!strcmp(k, key)) {
			*v = x;
			err = 0;
			break;
		}
	}
	fclose(f);
	return err;
}

/*
 * The cgroup of @pid from /proc/PID/cgroup: in the v1 hierarchy that has controller @ctrl, or
 * in v2 ("0::" line) when @ctrl is NULL.
 */
static int pid_cgroup(int pid, const char *ctrl, char *buf, size_t len)
{
	char path[64], line[4096];
	FILE *f;
	int err = -ENOENT;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (err && fgets(line, sizeof(line), f)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

		if (!c2)
			continue;
		*c2 = '\0';
		c2[1 + strcspn(c2 + 1, "\n")] = '\0';
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
	fclose(f);
	return err;
}

int tapir_pid_cgroup2(int pid, char *buf, size_t len)
{
	return pid_cgroup(pid, NULL, buf, len);
}

int tapir_cgroup_first_pid(const char *dir)
{
	char path[4096];
	struct dirent *de;
	int pid = 0;
	DIR *d;
	FILE *f;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	f = fopen(path, "re");
	if (f) {
		if (fscanf(f, "%d", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	if (pid)
		return pid;
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
