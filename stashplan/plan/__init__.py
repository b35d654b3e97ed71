"""The plan, pure: the Plan value (model), the diff, building a plan from desired vs actual (build), its JSON
and saved-file form (saved), and rendering it as Terraform-style text or JSON (render)."""
