package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/topology"
)

// imageCommand is `kvm-compose image list|import NAME FILE|rm NAME`: the
// server's VM image cache.
func (a *app) imageCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "List, import and remove the server's VM images"}
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the cached VM images with their sha256 and the deployments using them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			imgs, err := c.Images(cmd.Context())
			if err != nil {
				return err
			}
			return a.printImages(imgs, asJSON)
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print the images as JSON")
	var sum string
	imp := &cobra.Command{
		Use:   "import NAME FILE",
		Short: "Store FILE as the image NAME (a cloud_image of that name, or whose URL's file name is NAME, then needs no download)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[1])
			if err != nil {
				return err
			}
			defer f.Close()
			c, err := a.client()
			if err != nil {
				return err
			}
			img, err := c.ImportImage(cmd.Context(), args[0], f, sum)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "imported %s: %.1f MiB, sha256 %s\n", img.Name, float64(img.Size)/(1<<20), img.SHA256)
			return nil
		},
	}
	imp.Flags().StringVar(&sum, "sha256", "", "the sha256 the file must have (checked by the server)")
	rm := &cobra.Command{
		Use:     "rm NAME",
		Aliases: []string{"remove", "delete"},
		Short:   "Remove an image (refused while a deployment's disks are made from it)",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.DeleteImage(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "removed %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(list, imp, rm)
	return cmd
}

func (a *app) printImages(imgs []api.Image, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(imgs)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSIZE_MIB\tSHA256\tUSED_BY\tURL")
	for _, i := range imgs {
		used, from := "-", i.URL
		if len(i.UsedBy) > 0 {
			used = fmt.Sprint(i.UsedBy)
		}
		if from == "" {
			from = "(imported)"
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.16s\t%s\t%s\n", i.Name, float64(i.Size)/(1<<20), i.SHA256, used, from)
	}
	return tw.Flush()
}

// cloudImagesCommand is the original's `cloud-images`: the known image
// names (list), fetching one into the server's cache from where this
// command runs (download), and removing it (delete).
func (a *app) cloudImagesCommand() *cobra.Command {
	list := func(cmd *cobra.Command, args []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		imgs, err := c.Images(cmd.Context())
		if err != nil {
			return err
		}
		have := map[string]api.Image{}
		for _, i := range imgs {
			have[i.Name] = i
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tCACHED\tURL")
		for _, n := range topology.CloudImageNames() {
			u, _ := topology.CloudImageURL(n)
			cached := "no"
			if i, ok := have[n]; ok {
				cached = fmt.Sprintf("yes (%.16s)", i.SHA256)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", n, cached, u)
		}
		return tw.Flush()
	}
	// Bare, as in the original, it lists.
	cmd := &cobra.Command{Use: "cloud-images", Short: "The original's known cloud images: list (also bare), download, delete", Args: cobra.NoArgs, RunE: list}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the known cloud image names, their URLs and whether the server has them",
		Args:  cobra.NoArgs,
		RunE:  list,
	}, &cobra.Command{
		Use:   "download NAME",
		Short: "Download a known cloud image here and store it in the server's cache",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			u, ok := topology.CloudImageURL(args[0])
			if !ok {
				return fmt.Errorf("%q is not a known cloud image (kvm-compose cloud-images list)", args[0])
			}
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, u, nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("download %s: %w; offline, fetch it elsewhere and run kvm-compose image import %s FILE", u, err, args[0])
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("download %s: %s", u, resp.Status)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			img, err := c.ImportImage(cmd.Context(), args[0], resp.Body, "")
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "stored %s: %.1f MiB, sha256 %s\n", img.Name, float64(img.Size)/(1<<20), img.SHA256)
			return nil
		},
	}, &cobra.Command{
		Use:   "delete NAME",
		Short: "Remove a cloud image from the server's cache",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			return c.DeleteImage(cmd.Context(), args[0])
		},
	})
	return cmd
}
