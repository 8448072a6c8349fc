// Chinese labels by default, English by a switch (kept per browser).

export type Lang = "zh" | "en";

const LANG_KEY = "yishao.lang";

const T: Record<string, [string, string]> = {
  app: ["一哨群应", "Yishao"],
  console: ["联合指挥台", "Joint console"],
  terminal: ["车载终端", "Crew terminal"],
  coordinator: ["协调员", "Coordinator"],
  sign_in: ["登录", "Sign in"],
  sign_out: ["退出", "Sign out"],
  token: ["令牌", "Token"],
  token_hint: ["粘贴 make run 打印的令牌", "Paste a token printed by make run"],
  bad_token: ["令牌无效或已过期", "Token refused or expired"],
  wrong_page: ["此页面不适用于该角色，请打开", "This page is not for this role; open"],
  live: ["在线", "Live"],
  pill_connecting: ["连接中", "Connecting"],
  pill_offline: ["离线", "Offline"],
  pill_resyncing: ["同步中", "Resyncing"],
  pill_live: ["在线", "Live"],
  connecting: ["连接中…", "Connecting…"],
  offline: ["连接中断，正在重连…", "Connection lost, reconnecting…"],
  resyncing: ["正在重新同步…", "Resyncing…"],
  offline_since: ["上次同步", "last in sync"],
  incidents: ["警情", "Incidents"],
  units: ["车辆", "Units"],
  no_incidents: ["暂无警情", "No open incidents"],
  select_incident: ["选择一条警情（↑↓ 选择，回车打开）", "Select an incident (↑↓, Enter)"],
  timeline: ["时间线", "Timeline"],
  recommendations: ["推荐车辆", "Recommended units"],
  assign: ["派车", "Assign"],
  assign_suggested: ["派出推荐", "Assign suggested"],
  assigned: ["已派", "Assigned"],
  whistle: ["一哨", "Whistle"],
  whistle_sound: ["吹哨（一哨群应）", "Sound the whistle"],
  whistle_sounded: ["已吹哨", "Whistle sounded"],
  whistle_force: ["不满足吹哨条件，仍要吹哨？请写明理由", "Not eligible: give a reason to force it"],
  greenwave: ["绿波保护", "Green wave"],
  greenwave_on: ["开启绿波保护", "Turn on green wave"],
  greenwave_active: ["绿波已开启", "Green wave on"],
  close_incident: ["结案", "Close"],
  close_requested: ["已请主办单位结案", "Close requested of the lead agency"],
  close_reason: ["结案原因", "Reason for closing"],
  ack_board: ["应答板", "Ack board"],
  ack: ["确认", "Ack"],
  acked: ["已确认", "Acked"],
  pending: ["待确认", "Pending"],
  escalated: ["已升级", "Escalated"],
  expired: ["超时", "Expired"],
  stood_down: ["已撤", "Stood down"],
  primary: ["主班", "Primary"],
  backup: ["备班", "Backup"],
  calls: ["来电", "Calls"],
  merged_from: ["合并来电", "Merged calls"],
  priority: ["优先级", "Priority"],
  eta: ["预计", "ETA"],
  today: ["今日", "Today"],
  f_incidents: ["警情", "incidents"],
  f_open: ["未结", "open"],
  f_whistles: ["一哨", "whistles"],
  f_report: ["统计报表", "figures report"],
  f_arrival: ["平均到场", "mean arrival"],
  f_signals: ["绿波放行路口", "green-wave signals"],
  f_saved: ["估计节省", "est. saved"],
  f_saved_hint: [
    "已放行路口数 × 路网模型每个路口的预计延误",
    "signals served x the routing model's expected delay per signal",
  ],
  status: ["状态", "Status"],
  hospital: ["医院", "Hospital"],
  station: ["驻地", "Station"],
  pivot_post: ["支点", "Pivot post"],
  pivot_cover: ["覆盖", "covers"],
  pivot_calls: ["预计警情", "expected calls"],
  pivot_units: ["驻点警力", "posted units"],
  route: ["路线", "Route"],
  next_signals: ["前方信号灯", "Signals ahead"],
  no_assignment: ["当前无任务", "No assignment"],
  my_position: ["本车位置", "My position"],
  use_gps: ["发送定位", "Send my location"],
  gps_on: ["定位发送中", "Sending location"],
  gps_denied: ["未获定位权限", "Location not allowed"],
  compound_incidents: ["本小区警情", "Incidents in my compounds"],
  start_shift: ["开始值班（点击以允许铃声）", "Start shift (tap to allow the alarm)"],
  on_watch: ["值班中，等待召集", "On watch: waiting for a summons"],
  summoned: ["一哨召集！", "WHISTLE: you are summoned"],
  escalated_to_you: ["升级召集：主班未按时确认", "Escalated to you: the primary did not ack in time"],
  ack_big: ["确认到岗", "ACK"],
  ack_sent: ["已确认", "Acknowledged"],
  countdown: ["升级倒计时", "Escalates in"],
  who_summoned: ["召集人员", "Summoned"],
  called_by: ["报警中心", "Reported to"],
  duty: ["值班表", "Duty roster"],
  duty_today: ["今日", "Today"],
  duty_tomorrow: ["明日", "Tomorrow"],
  greenwave_requests: ["绿波请求", "Green-wave requests"],
  no_units_yet: ["尚未派车", "No units assigned yet"],
  missed_while_offline: ["断线期间收到的召集", "Summons received while offline"],
  late_ack: ["已超时并升级，仍可确认", "Past the deadline and escalated: you can still ack"],
  lost_banner: ["连接中断：召集可能无法送达！正在重连…", "Connection lost: a summons may not reach you! Reconnecting…"],
  no_duty: ["无人值班", "nobody on duty"],
  you: ["你", "you"],
  lang: ["English", "中文"],
  units_panel_hint: ["按机构和状态", "by agency and status"],
  call_types: ["类型", "Type"],
  sounded_by: ["吹哨", "sounded by"],
  why: ["原因", "why"],
  error: ["出错", "Error"],
  not_connected: ["未连接，稍后重试", "Not connected; try again"],
  unit: ["车辆", "Unit"],
  incident: ["警情", "Incident"],
  no_signals: ["无信号灯", "no signals"],
};

const STATUS: Record<string, [string, string]> = {
  open: ["待派", "open"],
  dispatched: ["已派", "dispatched"],
  on_scene: ["到场", "on scene"],
  closed: ["已结", "closed"],
  available: ["可用", "available"],
  en_route: ["在途", "en route"],
  transporting: ["转运", "transporting"],
  at_hospital: ["到院", "at hospital"],
  returning: ["返回", "returning"],
  out_of_service: ["停用", "out of service"],
  planned: ["已规划", "planned"],
  requested: ["已请求", "requested"],
  processing: ["处理中", "processing"],
  granted: ["已放行", "granted"],
  rejected: ["被拒", "rejected"],
  served: ["已通过", "served"],
  cancelled: ["已取消", "cancelled"],
  passed: ["已过", "passed"],
  pending: ["待确认", "pending"],
  acked: ["已确认", "acked"],
  escalated: ["已升级", "escalated"],
  expired: ["超时", "expired"],
  stood_down: ["已撤", "stood down"],
};

const CALL_TYPE: Record<string, [string, string]> = {
  traffic_accident: ["交通事故", "traffic accident"],
  traffic_accident_entrapment: ["事故被困", "crash, people trapped"],
  drowning: ["溺水", "drowning"],
  fall_from_height: ["坠落", "fall from height"],
  critical_patient: ["危重病人", "critical patient"],
  fire: ["火灾", "fire"],
  natural_disaster: ["自然灾害", "natural disaster"],
  fight: ["斗殴", "fight"],
  dispute: ["纠纷", "dispute"],
  labour_dispute: ["劳资纠纷", "labour dispute"],
  theft: ["盗窃", "theft"],
  noise: ["噪音", "noise"],
  other: ["其他", "other"],
};

const AGENCY: Record<string, [string, string]> = {
  police: ["公安", "police"],
  traffic: ["交警 122", "traffic 122"],
  ems: ["急救 120", "EMS 120"],
  fire: ["消防 119", "fire 119"],
  property: ["物业", "property"],
};

const UNIT_TYPE: Record<string, [string, string]> = {
  patrol_car: ["巡逻车", "patrol car"],
  traffic_police_car: ["交警车", "traffic car"],
  ambulance: ["救护车", "ambulance"],
  fire_engine: ["消防车", "fire engine"],
  fire_rescue: ["抢险车", "rescue"],
  ladder: ["云梯车", "ladder"],
  property_security: ["保安", "security"],
  mediator: ["调解员", "mediator"],
};

const EVENT: Record<string, [string, string]> = {
  "incident.created": ["立案", "incident opened"],
  "incident.call_added": ["来电并入", "call merged"],
  "incident.merged": ["合并", "merged"],
  "incident.split": ["拆分", "split"],
  "incident.updated": ["更新", "updated"],
  "incident.recommended": ["推荐车辆", "units recommended"],
  "incident.closed": ["结案", "closed"],
  "whistle.sounded": ["吹哨", "whistle sounded"],
  "whistle.summons": ["召集", "summons"],
  "whistle.ack": ["确认", "ack"],
  "whistle.alert": ["告警", "alert"],
  "whistle.stand_down": ["撤回", "stood down"],
  "whistle.closed": ["一哨结束", "whistle closed"],
  "assignment.created": ["派车", "assigned"],
  "route.planned": ["路线规划", "route planned"],
  "greenwave.planned": ["绿波规划", "green wave planned"],
  "greenwave.enabled": ["绿波开启", "green wave on"],
  "greenwave.activated": ["绿波生效", "green wave active"],
  "unit.status": ["车辆状态", "unit status"],
  "unit.updated": ["车辆更新", "unit updated"],
  "greenwave.request": ["绿波请求", "green-wave request"],
  "greenwave.update": ["绿波更新", "green-wave update"],
  "greenwave.cancel": ["绿波取消", "green-wave cancel"],
  "greenwave.status": ["绿波状态", "green-wave status"],
};

let lang: Lang = (localStorage.getItem(LANG_KEY) as Lang | null) ?? "zh";
const listeners: (() => void)[] = [];

export function currentLang(): Lang {
  return lang;
}

export function setLang(next: Lang): void {
  lang = next;
  localStorage.setItem(LANG_KEY, next);
  document.documentElement.lang = next === "zh" ? "zh-CN" : "en";
  for (const fn of listeners) fn();
}

export function onLang(fn: () => void): void {
  listeners.push(fn);
}

function pick(table: Record<string, [string, string]>, key: string): string {
  const entry = table[key];
  if (!entry) return key.replace(/_/g, " ");
  return lang === "zh" ? entry[0] : entry[1];
}

export const t = (key: string): string => pick(T, key);
export const tStatus = (key: string): string => pick(STATUS, key);
export const tType = (key: string): string => pick(CALL_TYPE, key);
export const tAgency = (key: string): string => pick(AGENCY, key);
export const tUnitType = (key: string): string => pick(UNIT_TYPE, key);
export const tEvent = (key: string): string => pick(EVENT, key);

document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
