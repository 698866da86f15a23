/* Smoke test of ptpip-sim through real libgphoto2 (not part of the CMake build).
 *
 *   gp_smoke PORT [CYCLES] [--expect-busy | --expect-noevent]
 *
 * PORT is "ptpip:127.0.0.1:P:P". Default: CYCLES x (trigger_capture, poll wait_for_event
 * until FILE_ADDED, file_get, file_delete), printing each cycle's time.
 * --expect-busy: trigger_capture must fail (the simulator runs with --fail-busy).
 * --expect-noevent: trigger succeeds but no FILE_ADDED arrives within 1.5 s.
 * Exit 0 on success. Build: see run_smoke.sh. */
#include <gphoto2/gphoto2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Polls events until FILE_ADDED (returns 1, fills path) or the deadline (returns 0). */
static int wait_file_added(Camera *cam, GPContext *ctx, double deadline_ms, CameraFilePath *path) {
    while (now_ms() < deadline_ms) {
        CameraEventType type;
        void *data = NULL;
        int ret = gp_camera_wait_for_event(cam, 100, &type, &data, ctx);
        if (ret < GP_OK) {
            fprintf(stderr, "wait_for_event: %d %s\n", ret, gp_result_as_string(ret));
            return -1;
        }
        if (type == GP_EVENT_FILE_ADDED) {
            *path = *(CameraFilePath *)data;
            free(data);
            return 1;
        }
        free(data);
    }
    return 0;
}

static int open_camera(const char *port, Camera **cam, GPContext *ctx) {
    CameraAbilitiesList *al;
    GPPortInfoList *pl;
    CameraAbilities a;
    GPPortInfo pi;
    int i;
    gp_camera_new(cam);
    gp_abilities_list_new(&al);
    gp_abilities_list_load(al, ctx);
    i = gp_abilities_list_lookup_model(al, "PTP/IP Camera");
    if (i < 0) return i;
    gp_abilities_list_get_abilities(al, i, &a);
    gp_camera_set_abilities(*cam, a);
    gp_abilities_list_free(al);
    gp_port_info_list_new(&pl);
    gp_port_info_list_load(pl);
    i = gp_port_info_list_lookup_path(pl, port);
    if (i < 0) return i;
    gp_port_info_list_get_info(pl, i, &pi);
    gp_camera_set_port_info(*cam, pi);
    gp_port_info_list_free(pl);
    return gp_camera_init(*cam, ctx);
}

int main(int argc, char **argv) {
    const char *port;
    int cycles = 100, expect_busy = 0, expect_noevent = 0, i, ret;
    Camera *cam = NULL;
    GPContext *ctx = gp_context_new();
    double *times;
    if (argc < 2) {
        fprintf(stderr, "usage: %s PORT [CYCLES] [--expect-busy|--expect-noevent]\n", argv[0]);
        return 2;
    }
    port = argv[1];
    for (i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--expect-busy")) expect_busy = 1;
        else if (!strcmp(argv[i], "--expect-noevent")) expect_noevent = 1;
        else cycles = atoi(argv[i]);
    }
    double t0 = now_ms();
    ret = open_camera(port, &cam, ctx);
    if (ret < GP_OK) {
        fprintf(stderr, "camera init failed: %d %s\n", ret, gp_result_as_string(ret));
        return 1;
    }
    printf("init %.2f ms\n", now_ms() - t0);

    if (expect_busy) {
        ret = gp_camera_trigger_capture(cam, ctx);
        printf("trigger_capture with --fail-busy: %d (%s)\n", ret, gp_result_as_string(ret));
        gp_camera_exit(cam, ctx);
        return ret == GP_ERROR_CAMERA_BUSY ? 0 : 1;
    }
    if (expect_noevent) {
        CameraFilePath path;
        ret = gp_camera_trigger_capture(cam, ctx);
        printf("trigger_capture with --no-event: %d\n", ret);
        if (ret < GP_OK) return 1;
        ret = wait_file_added(cam, ctx, now_ms() + 1500, &path);
        printf("FILE_ADDED within 1.5 s: %s\n", ret == 1 ? "yes (unexpected)" : "no (expected)");
        gp_camera_exit(cam, ctx);
        return ret == 0 ? 0 : 1;
    }

    times = calloc((size_t)cycles, sizeof(double));
    for (i = 0; i < cycles; i++) {
        CameraFilePath path;
        CameraFile *file;
        const char *data;
        unsigned long size;
        double start = now_ms();
        ret = gp_camera_trigger_capture(cam, ctx);
        if (ret < GP_OK) {
            fprintf(stderr, "cycle %d: trigger: %d %s\n", i, ret, gp_result_as_string(ret));
            return 1;
        }
        if (wait_file_added(cam, ctx, start + 5000, &path) != 1) {
            fprintf(stderr, "cycle %d: no FILE_ADDED\n", i);
            return 1;
        }
        gp_file_new(&file);
        ret = gp_camera_file_get(cam, path.folder, path.name, GP_FILE_TYPE_NORMAL, file, ctx);
        if (ret < GP_OK) {
            fprintf(stderr, "cycle %d: file_get %s/%s: %d\n", i, path.folder, path.name, ret);
            return 1;
        }
        gp_file_get_data_and_size(file, &data, &size);
        if (size < 4 || (unsigned char)data[0] != 0xFF || (unsigned char)data[1] != 0xD8 ||
            (unsigned char)data[size - 2] != 0xFF || (unsigned char)data[size - 1] != 0xD9) {
            fprintf(stderr, "cycle %d: not a JPEG (size %lu)\n", i, size);
            return 1;
        }
        gp_file_unref(file);
        ret = gp_camera_file_delete(cam, path.folder, path.name, ctx);
        if (ret < GP_OK) {
            fprintf(stderr, "cycle %d: delete: %d\n", i, ret);
            return 1;
        }
        times[i] = now_ms() - start;
        printf("cycle %3d %s/%s %lu bytes %.3f ms\n", i, path.folder, path.name, size, times[i]);
    }
    qsort(times, (size_t)cycles, sizeof(double), cmp_double);
    printf("cycles %d: min %.3f ms, median %.3f ms, p95 %.3f ms, max %.3f ms\n", cycles, times[0],
           times[cycles / 2], times[(cycles * 95) / 100 < cycles ? (cycles * 95) / 100 : cycles - 1],
           times[cycles - 1]);
    free(times);
    gp_camera_exit(cam, ctx);
    gp_camera_free(cam);
    gp_context_unref(ctx);
    return 0;
}
