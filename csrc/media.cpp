// OpenCV's video files, cameras and windows (videoio, highgui), built as a shared library of its own that
// classify-image loads the first time it opens a video, a camera or a window. Linked into the binary, these two
// modules and what they pull in (Qt, FFmpeg, GStreamer...: about 110 libraries) cost every run a tenth of a
// second at start-up, though most runs read and write still images only.
//
// Matrices cross the boundary as the opencv crate's `cv::Mat*`, captures and writers as opaque pointers that
// the caller frees. Every function returns NULL on success or a malloc'ed error message (OpenCV's exception
// text), which the caller frees; results are written through the `out` pointers.
#include <opencv2/core.hpp>
#include <opencv2/highgui.hpp>
#include <opencv2/videoio.hpp>

#include "guarded.h"

using guarded_call::guarded;

extern "C" {

char *ci_capture_open_file(const char *path, cv::VideoCapture **out) {
    return guarded([&] { *out = new cv::VideoCapture(path, cv::CAP_ANY); });
}

char *ci_capture_open_camera(int index, cv::VideoCapture **out) {
    return guarded([&] { *out = new cv::VideoCapture(index, cv::CAP_ANY); });
}

char *ci_capture_is_opened(cv::VideoCapture *capture, bool *out) {
    return guarded([&] { *out = capture->isOpened(); });
}

char *ci_capture_read(cv::VideoCapture *capture, cv::Mat *frame, bool *out) {
    return guarded([&] { *out = capture->read(*frame); });
}

char *ci_capture_fps(cv::VideoCapture *capture, double *out) {
    return guarded([&] { *out = capture->get(cv::CAP_PROP_FPS); });
}

void ci_capture_free(cv::VideoCapture *capture) { delete capture; }

char *ci_writer_open(const char *path, int fourcc, double fps, int width, int height, cv::VideoWriter **out) {
    return guarded([&] { *out = new cv::VideoWriter(path, fourcc, fps, cv::Size(width, height), true); });
}

char *ci_writer_is_opened(cv::VideoWriter *writer, bool *out) {
    return guarded([&] { *out = writer->isOpened(); });
}

char *ci_writer_write(cv::VideoWriter *writer, const cv::Mat *frame) {
    return guarded([&] { writer->write(*frame); });
}

char *ci_writer_release(cv::VideoWriter *writer) {
    return guarded([&] { writer->release(); });
}

void ci_writer_free(cv::VideoWriter *writer) { delete writer; }

// The image alone (GUI_NORMAL: without Qt's toolbar and status bar), at its own size.
char *ci_window_show(const char *title, const cv::Mat *image) {
    return guarded([&] {
        cv::namedWindow(title, cv::WINDOW_AUTOSIZE | cv::WINDOW_KEEPRATIO | cv::WINDOW_GUI_NORMAL);
        cv::imshow(title, *image);
    });
}

char *ci_window_wait_key(int delay_ms, int *out) {
    return guarded([&] { *out = cv::waitKey(delay_ms); });
}

char *ci_window_visible(const char *title, double *out) {
    return guarded([&] { *out = cv::getWindowProperty(title, cv::WND_PROP_VISIBLE); });
}

char *ci_windows_destroy() {
    return guarded([] { cv::destroyAllWindows(); });
}

}  // extern "C"
