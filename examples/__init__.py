"""Station files shipped with rramlab: ``sim_<bench>.toml`` run on the shipped simulated bench ``<bench>``;
``lab_*.toml`` are templates for real benches. ``rramlab stations`` lists them."""
