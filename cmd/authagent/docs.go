//go:build gendocs

package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// The docs generator pulls in a Markdown engine whose start-up cost every one-shot call
// (authagent header, the git helper) would pay, so it is built only with -tags gendocs:
//
//	go run -tags gendocs ./cmd/authagent gen-docs --man DIR --completions DIR
func init() { extraCommands = append(extraCommands, newGenDocsCmd) }

// newGenDocsCmd writes the man pages and shell completions that packages install; they
// come from the same command definitions as --help, so they cannot drift.
func newGenDocsCmd() *cobra.Command {
	var manDir, complDir string
	cmd := &cobra.Command{
		Use:    "gen-docs --man DIR --completions DIR",
		Short:  "Write man pages and bash, zsh and fish completions (for packaging)",
		Hidden: true,
		Args:   noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			if manDir != "" {
				if err := os.MkdirAll(manDir, 0o755); err != nil {
					return err
				}
				header := &doc.GenManHeader{Title: "AUTHAGENT", Section: "1", Source: "authagent " + version, Manual: "authagent manual"}
				root.DisableAutoGenTag = true
				if err := doc.GenManTree(root, header, manDir); err != nil {
					return fmt.Errorf("man pages: %w", err)
				}
			}
			if complDir != "" {
				if err := os.MkdirAll(complDir, 0o755); err != nil {
					return err
				}
				for name, gen := range map[string]func(string) error{
					"authagent.bash": func(p string) error { return root.GenBashCompletionFileV2(p, true) },
					"_authagent":     root.GenZshCompletionFile,
					"authagent.fish": func(p string) error { return root.GenFishCompletionFile(p, true) },
				} {
					if err := gen(filepath.Join(complDir, name)); err != nil {
						return fmt.Errorf("completion %s: %w", name, err)
					}
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&manDir, "man", "", "directory for man pages")
	cmd.Flags().StringVar(&complDir, "completions", "", "directory for completion scripts")
	return cmd
}
