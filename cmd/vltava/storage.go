package main

// `vltava storage`: Kafka's kafka-storage for Vltava's data dirs.
//
//	vltava storage random-uuid
//	vltava storage format --config FILE [--cluster-id ID] [--ignore-formatted] [--override k=v]
//	vltava storage info --config FILE [--override k=v]
//
// format writes meta.properties (cluster.id, node.id, a new directory.id) into every log
// dir and the metadata log dir of the configuration, as kafka-storage format does. A
// node formats itself at its first start anyway (derived or random cluster ID, see
// README), so format is for operators who want the cluster ID fixed up front. A dir
// formatted already is refused, unless --ignore-formatted, which leaves it as it is if it
// belongs to this node and cluster. The dirs are locked while formatting, so a running
// node's are refused.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/vltava/vltava/internal/cli"
	"github.com/vltava/vltava/internal/cli/cmdflag"
	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/metaprops"
	"github.com/vltava/vltava/internal/vfs"
)

// storageCommand describes `vltava storage` to the usage and shell completion.
func storageCommand() cli.Extra {
	return cli.Extra{
		Name:    "storage",
		Summary: "format a node's data dirs, or show them (kafka-storage: format, info, random-uuid)",
	}
}

func runStorage(args []string, stdout, stderr io.Writer) error {
	usage := "usage: vltava storage format|info|random-uuid [flags]\n\n" +
		"  format       write meta.properties (cluster ID, node ID) into the configuration's data dirs\n" +
		"  info         show the configuration's data dirs and their meta.properties\n" +
		"  random-uuid  print a new random UUID, as Kafka's cluster IDs are\n\n" +
		"Run \"vltava storage <command> -h\" for a command's flags.\n"
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no storage command")
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	case "random-uuid":
		fs := cmdflag.New("storage random-uuid", "", stdout, stderr)
		if rest, err := fs.Parse(args[1:]); err != nil || len(rest) > 0 {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			if err == nil {
				err = fs.Fail(fmt.Errorf("unexpected arguments %q", rest))
			}
			return err
		}
		fmt.Fprintln(stdout, metaprops.RandomUUID())
		return nil
	case "format", "info":
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown storage command %q", args[0])
	}
	cmd := args[0]
	fs := cmdflag.New("storage "+cmd, "--config FILE [flags]", stdout, stderr)
	configPath := fs.String("config", "", "properties `FILE` of the node (Kafka's broker keys)")
	fs.Alias("c", "config")
	ov := overrides{}
	fs.Var(ov, "override", "`key=value` config override (repeatable)")
	var clusterID *string
	var ignore *bool
	if cmd == "format" {
		clusterID = fs.String("cluster-id", "", "the cluster `ID` (default: cluster.id, else derived from controller.quorum.voters, else random)")
		fs.Alias("t", "cluster-id")
		ignore = fs.Bool("ignore-formatted", false, "skip dirs formatted already (they must be this node's and cluster's)")
		fs.Alias("g", "ignore-formatted")
	}
	rest, err := fs.Parse(args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if len(rest) > 0 {
		return fs.Fail(fmt.Errorf("unexpected arguments %q", rest))
	}
	cfg, err := config.Load(*configPath, os.Environ(), ov)
	if err != nil {
		return err
	}
	fsys := vfs.OS()
	dirs := metaprops.Dirs(cfg)
	if cmd == "info" {
		return storageInfo(stdout, cfg, metaprops.Load(fsys, dirs))
	}

	id := *clusterID
	if id == "" {
		id = cfg.ClusterID
	} else if cfg.ClusterID != "" && cfg.ClusterID != id {
		return fmt.Errorf("--cluster-id %s differs from cluster.id %s", id, cfg.ClusterID)
	}
	if id == "" {
		id = metaprops.NewClusterID(cfg)
	}
	if err := metaprops.CheckClusterID(id); err != nil {
		return err
	}
	for _, d := range dirs {
		if err := vfs.MkdirAllDurable(fsys, d); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
		l, err := vfs.LockDir(fsys, d)
		if err != nil {
			return err
		}
		defer l.Close()
	}
	found := metaprops.Load(fsys, dirs)
	var todo []metaprops.Dir
	for _, d := range found {
		switch {
		case d.Err != nil:
			return fmt.Errorf("%s: %w", d.Path, d.Err)
		case d.Found && !*ignore:
			return fmt.Errorf("log directory %s is already formatted (cluster %s, node %d); use --ignore-formatted to ignore it and format the others",
				d.Path, d.Props.ClusterID, d.Props.NodeID)
		case d.Found:
			if _, err := metaprops.Check([]metaprops.Dir{d}, cfg.NodeID, id); err != nil {
				return err
			}
		default:
			todo = append(todo, d)
		}
	}
	written, err := metaprops.Complete(fsys, todo, id, cfg.NodeID)
	for _, d := range written {
		abs, _ := filepath.Abs(d)
		fmt.Fprintf(stdout, "Formatted %s with cluster.id %s and node.id %d.\n", abs, id, cfg.NodeID)
	}
	if err == nil && len(written) == 0 {
		fmt.Fprintln(stdout, "All of the log directories are already formatted.")
	}
	return err
}

// storageInfo prints each dir and its meta.properties, and what is wrong with them.
func storageInfo(w io.Writer, cfg config.Broker, ds []metaprops.Dir) error {
	var problems []string
	for _, d := range ds {
		abs, _ := filepath.Abs(d.Path)
		role := "log directory"
		if filepath.Clean(d.Path) == filepath.Clean(cfg.MetadataLogDir) {
			role = "log directory and metadata log directory"
			if !contains(cfg.LogDirs, d.Path) {
				role = "metadata log directory"
			}
		}
		switch {
		case d.Err != nil:
			fmt.Fprintf(w, "Found %s %s: %v\n", role, abs, d.Err)
			problems = append(problems, d.Err.Error())
		case !d.Found:
			fmt.Fprintf(w, "Found %s %s: not formatted (no meta.properties); the node formats it at its first start\n", role, abs)
		default:
			p := d.Props
			fmt.Fprintf(w, "Found %s %s: version=1, cluster.id=%s, node.id=%d, directory.id=%s\n", role, abs, p.ClusterID, p.NodeID, p.DirectoryID)
		}
	}
	if _, err := metaprops.Check(ds, cfg.NodeID, cfg.ClusterID); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		fmt.Fprintf(w, "Found problems:\n")
		for _, p := range problems {
			fmt.Fprintf(w, "  %s\n", p)
		}
		return errors.New("the data dirs have problems")
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if filepath.Clean(x) == filepath.Clean(s) {
			return true
		}
	}
	return false
}
