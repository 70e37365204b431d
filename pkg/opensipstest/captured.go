package opensipstest

// capturedEvents is the events_list of the captured OpenSIPS
// (mi/datagram/events_list.response.json), in id order.
var capturedEvents = []string{
	"E_CORE_SR_STATUS_CHANGED", "E_CORE_THRESHOLD", "E_CORE_SHM_THRESHOLD", "E_CORE_PKG_THRESHOLD",
	"E_CORE_PROC_AUTO_SCALE", "E_CORE_TCP_DISCONNECT", "E_PROFILING_SCRIPT", "E_PROFILING_PROC",
	"E_UL_AOR_INSERT", "E_UL_AOR_DELETE", "E_UL_CONTACT_INSERT", "E_UL_CONTACT_UPDATE",
	"E_UL_CONTACT_DELETE", "E_UL_CONTACT_REFRESH", "E_UL_LATENCY_UPDATE", "E_MYSQL_CONNECTION",
	"E_IMC_MESSAGE", "E_CORE_LOG",
}

// WhichAll is the result of MI "which" without params on the captured
// OpenSIPS (mi/datagram/which_all.response.json): only the 4.x names.
const WhichAll = `["statistics:get","statistics:list","statistics:reset","statistics:reset_all","core:pi_list","core:pi_reload","core:uptime","core:version","core:pwd","core:arg","core:which","core:ps","core:kill","core:log_level","core:xlog_level","core:profiling_proc","core:log_level_filter","core:log_mute_state","core:reload_routes","core:help","tcp:list","tcp:close","mem:pkg_dump","mem:shm_dump","mem:rpm_dump","cache:store","cache:fetch","cache:remove","status_report:get","status_report:status","status_report:reports","status_report:identifiers","evi:subscribe","evi:list","evi:subscribers","evi:raise","blacklists:list","blacklists:check_all","blacklists:check","blacklists:add_rule","blacklists:del_rule","tcp:trace","tm:uac_dlg","tm:uac_cancel","tm:hash","tm:reply","cfgutils:rand_set_prob","cfgutils:rand_reset_prob","cfgutils:rand_get_prob","cfgutils:get_config_hash","cfgutils:check_config_hash","cfgutils:shv_get","cfgutils:shv_set","usrloc:rm","usrloc:rm_contact","usrloc:dump","usrloc:flush","usrloc:add","usrloc:show_contact","usrloc:sync","usrloc:cluster_sync","imc:list_rooms","imc:list_members","httpd:list_root_path"]`

// whichParams answers "which" with a command: its accepted param sets. Only
// imc_list_members was captured ([["room"]]); the others follow the
// commands' recipes in OpenSIPS's source.
var whichParams = map[string]string{
	"imc_list_members": `[["room"]]`, "imc:list_members": `[["room"]]`,
	"imc_list_rooms": `[[]]`, "imc:list_rooms": `[[]]`,
	"t_uac_dlg":       `[["method","ruri","headers"],["method","ruri","headers","next_hop"],["method","ruri","headers","next_hop","socket"],["method","ruri","headers","next_hop","socket","body"]]`,
	"event_subscribe": `[["event","socket"],["event","socket","expire"]]`,
	"which":           `[[],["command"]]`,
	"ul_show_contact": `[["table_name","aor"]]`, "usrloc:show_contact": `[["table_name","aor"]]`,
	"ul_dump": `[[],["brief"]]`, "usrloc:dump": `[[],["brief"]]`,
}
