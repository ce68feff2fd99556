package repoconfig

// refuseImageBuilders reports each dbt project's image builder that the server cannot run
// (Rules.RefuseImageBuilder), at the line of image.builder, or of image for the default.
func refuseImageBuilders(ps *problems, projects []rawProject, rules Rules) {
	if rules.RefuseImageBuilder == nil {
		return
	}
	for _, rp := range projects {
		img := rp.DBT.Image
		if Framework(rp.Framework.V) != DBT || !img.Set {
			continue
		}
		b, where := BuildLayers, img.V.At.child("builder")
		if v := img.V.Builder; v.Set {
			b, where = ImageBuilder(v.V), v.At
		}
		if b != BuildLayers && b != BuildDockerfile {
			continue // reported as unknown already
		}
		if why := rules.RefuseImageBuilder(b); why != "" {
			ps.add(where, "%s %s", b, why)
		}
	}
}
