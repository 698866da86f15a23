#include <gphoto2/gphoto2.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "camera/gphoto_impl.h"
#include "camera/gphoto_session.h"

namespace photorig::camera::detail {

namespace {
const char* widget_type_name(CameraWidgetType type) {
    switch (type) {
        case GP_WIDGET_WINDOW:
            return "window";
        case GP_WIDGET_SECTION:
            return "section";
        case GP_WIDGET_TEXT:
            return "text";
        case GP_WIDGET_RANGE:
            return "range";
        case GP_WIDGET_TOGGLE:
            return "toggle";
        case GP_WIDGET_RADIO:
            return "radio";
        case GP_WIDGET_MENU:
            return "menu";
        case GP_WIDGET_BUTTON:
            return "button";
        case GP_WIDGET_DATE:
            return "date";
    }
    return "unknown";
}

std::string format_number(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

std::string widget_value_text(CameraWidget* w) {
    CameraWidgetType type;
    gp_widget_get_type(w, &type);
    switch (type) {
        case GP_WIDGET_TEXT:
        case GP_WIDGET_RADIO:
        case GP_WIDGET_MENU: {
            const char* v = nullptr;
            if (gp_widget_get_value(w, &v) == GP_OK && v) return v;
            return "";
        }
        case GP_WIDGET_RANGE: {
            float v = 0;
            gp_widget_get_value(w, &v);
            return format_number(v);
        }
        case GP_WIDGET_TOGGLE:
        case GP_WIDGET_DATE: {
            int v = 0;
            gp_widget_get_value(w, &v);
            return std::to_string(v);
        }
        default:
            return "";
    }
}

Setting describe_widget(CameraWidget* w) {
    Setting s;
    const char* text = nullptr;
    if (gp_widget_get_name(w, &text) == GP_OK && text) s.name = text;
    if (gp_widget_get_label(w, &text) == GP_OK && text) s.label = text;
    CameraWidgetType type;
    gp_widget_get_type(w, &type);
    s.type = widget_type_name(type);
    int ro = 0;
    gp_widget_get_readonly(w, &ro);
    s.read_only = ro != 0;
    s.value = widget_value_text(w);
    if (type == GP_WIDGET_RADIO || type == GP_WIDGET_MENU) {
        for (int i = 0; i < gp_widget_count_choices(w); ++i) {
            const char* c = nullptr;
            if (gp_widget_get_choice(w, i, &c) == GP_OK && c) s.choices.push_back(c);
        }
    } else if (type == GP_WIDGET_RANGE) {
        float lo = 0, hi = 0, step = 0;
        gp_widget_get_range(w, &lo, &hi, &step);
        s.min = lo;
        s.max = hi;
        s.step = step;
    }
    for (int i = 0; i < gp_widget_count_children(w); ++i) {
        CameraWidget* child = nullptr;
        if (gp_widget_get_child(w, i, &child) == GP_OK && child)
            s.children.push_back(describe_widget(child));
    }
    return s;
}

bool parse_double(const std::string& text, double* out) {
    if (text.empty()) return false;
    char* end = nullptr;
    errno = 0;
    *out = std::strtod(text.c_str(), &end);
    return errno == 0 && end && *end == '\0';
}

// Checks `value` against the widget and stores it there. The camera is not touched yet.
Status put_widget_value(CameraWidget* w, const std::string& name, const std::string& value) {
    auto bad = [&](const std::string& why) {
        return Error(codes::bad_setting_value, name + ": " + why + ", got '" + value + "'");
    };
    CameraWidgetType type;
    gp_widget_get_type(w, &type);
    int rc = GP_OK;
    switch (type) {
        case GP_WIDGET_TEXT:
            rc = gp_widget_set_value(w, value.c_str());
            break;
        case GP_WIDGET_RADIO:
        case GP_WIDGET_MENU: {
            std::string allowed;
            bool found = false;
            for (int i = 0; i < gp_widget_count_choices(w); ++i) {
                const char* c = nullptr;
                if (gp_widget_get_choice(w, i, &c) != GP_OK || !c) continue;
                if (value == c) found = true;
                if (i < 24) allowed += std::string(allowed.empty() ? "" : ", ") + c;
            }
            if (!found) return bad("must be one of: " + allowed);
            rc = gp_widget_set_value(w, value.c_str());
            break;
        }
        case GP_WIDGET_RANGE: {
            double v = 0;
            float lo = 0, hi = 0, step = 0;
            gp_widget_get_range(w, &lo, &hi, &step);
            if (!parse_double(value, &v)) return bad("must be a number");
            if (v < lo || v > hi)
                return bad("must be between " + format_number(lo) + " and " + format_number(hi));
            float f = static_cast<float>(v);
            rc = gp_widget_set_value(w, &f);
            break;
        }
        case GP_WIDGET_TOGGLE: {
            int v;
            if (value == "1" || value == "true" || value == "on") {
                v = 1;
            } else if (value == "0" || value == "false" || value == "off") {
                v = 0;
            } else {
                return bad("must be 0 or 1");
            }
            rc = gp_widget_set_value(w, &v);
            break;
        }
        case GP_WIDGET_DATE: {
            double v = 0;
            if (!parse_double(value, &v) || v < 0 || v > 4e9)
                return bad("must be seconds since the Unix epoch");
            int i = static_cast<int>(v);
            rc = gp_widget_set_value(w, &i);
            break;
        }
        default:
            return Error(codes::setting_read_only,
                         name + ": a " + widget_type_name(type) + " has no value to set");
    }
    if (rc < GP_OK) return bad(gp_text(rc));
    return ok();
}
}  // namespace

Expected<Setting> GphotoSession::settings(const std::string& name) {
    CameraWidget* root = nullptr;
    auto st = impl_->call("read settings", [&] {
        return gp_camera_get_config(impl_->camera, &root, impl_->context);
    });
    if (!st) return st.error();
    Expected<Setting> out = Setting{};
    CameraWidget* start = root;
    if (!name.empty() && gp_widget_get_child_by_name(root, name.c_str(), &start) < GP_OK) {
        out = Error(codes::unknown_setting, "the camera has no setting '" + name + "'");
    } else {
        out = describe_widget(start);
    }
    gp_widget_free(root);
    return out;
}

Expected<std::string> GphotoSession::set_setting(const std::string& name,
                                                 const std::string& value) {
    CameraWidget* root = nullptr;
    auto st = impl_->call("read settings", [&] {
        return gp_camera_get_config(impl_->camera, &root, impl_->context);
    });
    if (!st) return st.error();
    Expected<std::string> out = std::string();
    CameraWidget* w = nullptr;
    int ro = 0;
    if (name.empty() || gp_widget_get_child_by_name(root, name.c_str(), &w) < GP_OK || !w) {
        out = Error(codes::unknown_setting, "the camera has no setting '" + name + "'");
    } else if (gp_widget_get_readonly(w, &ro) == GP_OK && ro) {
        out = Error(codes::setting_read_only, name + " is read-only on this camera");
    } else if (auto put = put_widget_value(w, name, value); !put) {
        out = put.error();
    } else {
        impl_->last_context_error.clear();
        int rc = gp_camera_set_single_config(impl_->camera, name.c_str(), w, impl_->context);
        if (rc == GP_ERROR_BAD_PARAMETERS || rc == GP_ERROR_NOT_SUPPORTED) {
            out = Error(
                codes::bad_setting_value,
                "the camera refused " + name + " = '" + value + "': " + gp_text(rc) +
                    (impl_->last_context_error.empty() ? "" : ": " + impl_->last_context_error));
        } else if (rc < GP_OK) {
            out = classify_gphoto_error(rc, impl_->last_context_error, "set " + name);
        } else {
            // What the camera reports now, not what we asked for: it may round or refuse silently.
            CameraWidget* back = nullptr;
            auto got = impl_->call("read back " + name, [&] {
                return gp_camera_get_single_config(impl_->camera, name.c_str(), &back,
                                                   impl_->context);
            });
            if (!got) {
                out = got.error();
            } else {
                out = widget_value_text(back);
                gp_widget_free(back);
            }
        }
    }
    gp_widget_free(root);
    return out;
}

}  // namespace photorig::camera::detail
