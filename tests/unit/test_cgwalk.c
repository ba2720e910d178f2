// SPDX-License-Identifier: GPL-2.0
/* Unit tests for the cgroup tree walk: every directory once, parents first, and a tree that
 * changes under the walk neither stops it nor passes for complete when it was not. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cgroups.h"

#define MAX_SEEN 64

struct seen {
	char root[256];
	char path[MAX_SEEN][512];
	int n;
	/* Removal under the walk: at the first visit of a child of the root, remove these. */
	const char *const *remove;
	int removed;
};

static void note(void *ctx, const char *path, int fd)
{
	struct seen *s = ctx;
	char victim[512];
	const char *const *r;
	const char *rel = path + strlen(s->root);

	struct stat by_fd, by_path;
	uint64_t id_fd, id_path;

	assert_true(s->n < MAX_SEEN);
	/* The fd is the directory of that path. */
	assert_int_equal(fstat(fd, &by_fd), 0);
	assert_int_equal(stat(path, &by_path), 0);
	assert_true(by_fd.st_ino == by_path.st_ino && by_fd.st_dev == by_path.st_dev);
	/* And its id, as the scan takes it, is the one its path gives. */
	assert_int_equal(tapir_cgroup_id_fd(fd, &id_fd), 0);
	assert_int_equal(tapir_cgroup_id(path, &id_path), 0);
	assert_true(id_fd == id_path);
	snprintf(s->path[s->n++], sizeof(s->path[0]), "%s", *rel ? rel : "/");
	if (!s->remove || s->removed || !*rel)
		return;
	for (r = s->remove; *r; r++) {
		snprintf(victim, sizeof(victim), "%s/%s", s->root, *r);
		if (strcmp(victim, path))
			rmdir(victim); /* not the one being visited */
	}
	s->removed = 1;
}

static int was_seen(const struct seen *s, const char *rel)
{
	int i, k = 0;

	for (i = 0; i < s->n; i++)
		k += !strcmp(s->path[i], rel);
	return k;
}

static int index_of(const struct seen *s, const char *rel)
{
	int i;

	for (i = 0; i < s->n; i++)
		if (!strcmp(s->path[i], rel))
			return i;
	return -1;
}

static void make_tree(struct seen *s, const char *const *dirs)
{
	char path[512];

	snprintf(s->root, sizeof(s->root), "/tmp/tapir-cgwalk-XXXXXX");
	assert_non_null(mkdtemp(s->root));
	for (; *dirs; dirs++) {
		snprintf(path, sizeof(path), "%s/%s", s->root, *dirs);
		assert_int_equal(mkdir(path, 0755), 0);
	}
}

static void remove_tree(const struct seen *s)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->root);
	assert_int_equal(system(cmd), 0);
}

static void test_every_directory_once_parents_first(void **state)
{
	static const char *const dirs[] = { "a", "a/x", "a/x/deep", "b", "c", NULL };
	struct seen s = { 0 };
	char path[512];
	int fd;

	(void)state;
	make_tree(&s, dirs);
	/* Files and symbolic links to directories are not directories of the tree. */
	snprintf(path, sizeof(path), "%s/a/cpu.stat", s.root);
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/link", s.root);
	assert_int_equal(symlink("a", path), 0);

	assert_int_equal(tapir_cgroup_walk(s.root, note, &s), 0);
	assert_int_equal(s.n, 6);
	assert_int_equal(was_seen(&s, "/"), 1);
	assert_int_equal(index_of(&s, "/"), 0);
	for (const char *const *d = dirs; *d; d++) {
		char rel[300];

		snprintf(rel, sizeof(rel), "/%s", *d);
		assert_int_equal(was_seen(&s, rel), 1);
	}
	assert_true(index_of(&s, "/a") < index_of(&s, "/a/x"));
	assert_true(index_of(&s, "/a/x") < index_of(&s, "/a/x/deep"));
	remove_tree(&s);
}

/* The shape that made nftw() give up: siblings removed between the listing and their visit.
 * The walk goes on, sees the one that stays, and still counts as complete. */
static void test_removed_under_the_walk_is_skipped(void **state)
{
	static const char *const dirs[] = { "c0", "c1", "c2",	"c3",	      "c4", "c5",
					    "c6", "c7", "keep", "keep/inner", NULL };
	static const char *const gone[] = { "c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", NULL };
	struct seen s = { .remove = gone };
	int i, n_gone = 0;

	(void)state;
	make_tree(&s, dirs);
	assert_int_equal(tapir_cgroup_walk(s.root, note, &s), 0);
	assert_true(s.removed);
	assert_int_equal(was_seen(&s, "/keep"), 1);
	assert_int_equal(was_seen(&s, "/keep/inner"), 1);
	/* At most the one visited first (the one that removed the others) of the c*. */
	for (i = 0; gone[i]; i++) {
		char rel[16];

		snprintf(rel, sizeof(rel), "/%s", gone[i]);
		n_gone += was_seen(&s, rel);
	}
	assert_true(n_gone <= 1);
	remove_tree(&s);
}

/* A part of the tree the walk cannot name (its path is longer than PATH_MAX) makes it
 * incomplete, and the rest is still visited. */
static void test_unseen_part_makes_the_walk_incomplete(void **state)
{
	static const char *const dirs[] = { "a", "z", NULL };
	char name[201];
	struct seen s = { 0 };
	int fd, sub, i;

	(void)state;
	make_tree(&s, dirs);
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	fd = open(s.root, O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	for (i = 0; i < 25; i++) { /* 25 * 201 bytes: past the 4096 the walk can name */
		assert_int_equal(mkdirat(fd, name, 0755), 0);
		sub = openat(fd, name, O_RDONLY | O_DIRECTORY);
		assert_true(sub >= 0);
		close(fd);
		fd = sub;
	}
	close(fd);
	assert_int_equal(tapir_cgroup_walk(s.root, note, &s), -ENAMETOOLONG);
	assert_int_equal(was_seen(&s, "/a"), 1);
	assert_int_equal(was_seen(&s, "/z"), 1);
	remove_tree(&s);
}

/* Which of @rels are top-most (no ancestor among them), as tapir_watched_tops() says: their
 * paths joined by spaces, in its order. */
static void tops_of(const char *const *rels, size_t n, char *buf, size_t len)
{
	struct tapir_watched w[16] = { { 0 } };
	const struct tapir_watched **tops;
	ssize_t k, i;

	assert_true(n <= 16);
	for (i = 0; i < (ssize_t)n; i++) {
		w[i].id = 100 + i;
		w[i].rel = (char *)rels[i];
	}
	k = tapir_watched_tops(w, n, &tops);
	assert_true(k >= 0);
	buf[0] = '\0';
	for (i = 0; i < k; i++) {
		assert_true(tops[i]->id == 100 + (uint64_t)(tops[i] - w));
		snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", i ? " " : "", tops[i]->rel);
	}
	free(tops);
}

static void test_tops_are_the_watched_without_a_watched_ancestor(void **state)
{
	/* "/a-b" and "/a.b" sort between "/a" and "/a/x" ('-' and '.' come before '/'): a
	 * neighbour in the order is not an ancestor. */
	const char *const nested[] = { "/a/x/y", "/a-b", "/a/x", "/b/c", "/a", "/a.b/c", "/a-b/z" };
	const char *const rooted[] = { "/k/p", "/", "/k" };
	const char *const siblings[] = { "/kubepods/pod1", "/kubepods/pod10", "/kubepods/pod1/c" };
	char got[256];

	(void)state;
	tops_of(nested, 7, got, sizeof(got));
	assert_string_equal(got, "/a /a-b /a.b/c /b/c");
	tops_of(rooted, 3, got, sizeof(got));
	assert_string_equal(got, "/");
	tops_of(siblings, 3, got, sizeof(got));
	assert_string_equal(got, "/kubepods/pod1 /kubepods/pod10");
	tops_of(NULL, 0, got, sizeof(got));
	assert_string_equal(got, "");
}

static void test_missing_root(void **state)
{
	struct seen s = { 0 };

	(void)state;
	snprintf(s.root, sizeof(s.root), "/tmp/tapir-cgwalk-none-%d", getpid());
	assert_int_equal(tapir_cgroup_walk(s.root, note, &s), -ENOENT);
	assert_int_equal(s.n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_directory_once_parents_first),
		cmocka_unit_test(test_removed_under_the_walk_is_skipped),
		cmocka_unit_test(test_unseen_part_makes_the_walk_incomplete),
		cmocka_unit_test(test_tops_are_the_watched_without_a_watched_ancestor),
		cmocka_unit_test(test_missing_root),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
