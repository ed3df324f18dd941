package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/testbedos/testbedos/internal/api"
)

// Images is the server's VM image cache.
type Images interface {
	List(ctx context.Context) ([]api.Image, error)
	Import(ctx context.Context, name string, r io.Reader, sha256 string) (api.Image, error)
	Remove(ctx context.Context, name string) error
}

func imagesOf(d Deps) (Images, error) {
	if d.Images == nil {
		return nil, errorf(http.StatusServiceUnavailable, nil, "this server keeps no VM images")
	}
	return d.Images, nil
}

// listImages answers GET /api/images.
func listImages(d Deps) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		imgs, err := imagesOf(d)
		if err != nil {
			return err
		}
		list, err := imgs.List(r.Context())
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, list)
		return nil
	}
}

// importImage answers POST /api/images: a multipart form whose "name" (and
// optional "sha256") come before its "file", or are given as query
// parameters. The file streams into the cache; it is never held whole.
func importImage(d Deps) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		imgs, err := imagesOf(d)
		if err != nil {
			return err
		}
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "multipart/form-data" {
			return errorf(http.StatusBadRequest, nil, "send the image as multipart/form-data with the fields name and file (kvm-compose image import NAME FILE)")
		}
		mr, err := r.MultipartReader()
		if err != nil {
			return errorf(http.StatusBadRequest, err, "multipart body: "+err.Error())
		}
		name, sum := r.URL.Query().Get("name"), r.URL.Query().Get("sha256")
		for {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				return errorf(http.StatusBadRequest, nil, "the form has no file field")
			}
			if err != nil {
				return errorf(http.StatusBadRequest, err, "multipart body: "+err.Error())
			}
			switch part.FormName() {
			case "name", "sha256":
				v, err := io.ReadAll(io.LimitReader(part, 256))
				if err != nil {
					return errorf(http.StatusBadRequest, err, "multipart body: "+err.Error())
				}
				if part.FormName() == "name" {
					name = strings.TrimSpace(string(v))
				} else {
					sum = strings.TrimSpace(string(v))
				}
			case "file":
				if name == "" {
					return errorf(http.StatusBadRequest, nil, "the name field must come before the file field (or give ?name=)")
				}
				img, err := imgs.Import(r.Context(), name, part, sum)
				if err != nil {
					return err
				}
				writeJSON(w, http.StatusCreated, img)
				return nil
			default:
				return errorf(http.StatusBadRequest, nil, fmt.Sprintf("unknown form field %q (want name, sha256, file)", part.FormName()))
			}
		}
	}
}

// deleteImage answers DELETE /api/images/{name}: 409 while a deployment's
// disks are made from it.
func deleteImage(d Deps) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		imgs, err := imagesOf(d)
		if err != nil {
			return err
		}
		if err := imgs.Remove(r.Context(), r.PathValue("name")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}
